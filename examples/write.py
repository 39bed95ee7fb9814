"""The article's write.py, done with shmframe: publish camera frames (or a generated test pattern
when there is no camera) with the article's metadata struct, zero-copy.

    python examples/write.py abc                 # camera 0, else a test pattern, until Ctrl-C
    python examples/write.py abc --frames 100 --fps 30

Needs `pip install shmframe opencv-python-headless` (or opencv-python for read.py's window).
"""

from __future__ import annotations

import argparse
import time
from ctypes import Structure, c_int32, c_int64

import cv2
import numpy as np

import shmframe


class MD(Structure):
    """The article's metadata struct. The reader gets it back without importing this file."""

    _fields_ = [
        ("shape_0", c_int32),
        ("shape_1", c_int32),
        ("shape_2", c_int32),
        ("size", c_int64),
        ("count", c_int64),
    ]


def test_pattern(buf: np.ndarray, k: int) -> None:
    """A moving colour gradient with the frame number, drawn straight into `buf`."""
    h, w, _ = buf.shape
    x = (np.arange(w, dtype=np.uint16) + 4 * k) % 256
    y = np.arange(h, dtype=np.uint16)[:, None] * 255 // max(h - 1, 1)
    buf[:, :, 0] = x
    buf[:, :, 1] = y
    buf[:, :, 2] = (x[None, :] + y) // 2
    cv2.putText(buf, f"frame {k}", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", default="abc", help="channel name (default: abc)")
    p.add_argument("--frames", type=int, default=0, help="stop after N frames (0: until Ctrl-C)")
    p.add_argument("--fps", type=float, default=30.0, help="rate of the test pattern")
    p.add_argument("--size", default="640x480", help="test pattern WIDTHxHEIGHT")
    p.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    args = p.parse_args()

    cap = cv2.VideoCapture(args.camera)
    camera = cap.isOpened()
    if camera:
        ok, first = cap.read()
        camera = ok
    if camera:
        shape = first.shape
        print(f"camera {args.camera}: {shape[1]}x{shape[0]}")
    else:
        width, height = (int(v) for v in args.size.split("x"))
        shape = (height, width, 3)
        print(f"no camera: publishing a {width}x{height} test pattern at {args.fps:g} fps")

    md = MD(shape[0], shape[1], shape[2], int(np.prod(shape)), 0)
    with shmframe.Writer(args.name, meta=MD) as w:
        print(f"writing to channel {args.name!r}; Ctrl-C stops")
        k = 0
        next_at = time.monotonic()
        try:
            while not args.frames or k < args.frames:
                md.count = k + 1
                with w.loan(shape, np.uint8, meta=md) as buf:
                    if camera:
                        ok, _ = cap.read(buf)  # OpenCV decodes straight into shared memory
                        if not ok:
                            raise RuntimeError("the camera stopped delivering frames")
                    else:
                        test_pattern(buf, k)
                k += 1
                if not camera:
                    next_at += 1 / args.fps
                    time.sleep(max(0.0, next_at - time.monotonic()))
        except KeyboardInterrupt:
            pass
    print(f"published {k} frames; channel removed")


if __name__ == "__main__":
    main()
