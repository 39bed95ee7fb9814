"""The article's read.py, done with shmframe: show the frames of a channel in a window, or print
their rate and latency when there is no display.

    python examples/read.py abc                  # waits for the writer; `q` or Ctrl-C quits
    python examples/read.py abc --frames 100 --headless

The metadata arrives as a ctypes structure rebuilt from the channel (no shared structures.py).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import shmframe


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", default="abc", help="channel name (default: abc)")
    p.add_argument("--frames", type=int, default=0, help="stop after N frames (0: until the writer closes)")
    p.add_argument("--headless", action="store_true", help="print statistics, no window")
    p.add_argument("--timeout", type=float, default=None, help="give up waiting after S seconds")
    args = p.parse_args()

    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    window = not args.headless and bool(display)
    if window:
        import cv2

    print(f"waiting for channel {args.name!r} ...")
    n, missed, lat = 0, 0, []
    t0 = last_report = time.monotonic()
    try:
        with shmframe.Reader(args.name, timeout=args.timeout) as r:
            r.set_latest_only(window)  # a display wants the newest frame, not every frame
            for frame in r:  # ends when the writer closes the channel
                n += 1
                if n == 1:
                    t0 = time.monotonic()
                missed += frame.missed
                lat.append((shmframe.monotonic_ns() - frame.timestamp_ns) / 1000)
                if window:
                    cv2.imshow(args.name, frame.array)
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
                now = time.monotonic()
                if now - last_report >= 1 or n == args.frames:
                    md = frame.meta
                    rate = (n - 1) / (now - t0) if now > t0 else 0.0
                    print(
                        f"frame {frame.index}: {frame.array.shape} {frame.array.dtype}, "
                        f"count={md.count if md is not None else '-'}, "
                        f"{rate:.1f} fps, latency p50 {np.percentile(lat, 50):.0f} us, "
                        f"missed {missed}"
                    )
                    last_report, lat = now, lat[-1000:]
                if n == args.frames:
                    break
    except KeyboardInterrupt:
        pass
    except shmframe.WriterGone as e:
        print(f"writer gone: {e}")
    print(f"received {n} frames, missed {missed}")


if __name__ == "__main__":
    main()
