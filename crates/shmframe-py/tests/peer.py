"""A writer or reader process for the tests, started with subprocess (a fresh interpreter).

    peer.py write NAME FRAMES [--meta] [--hold]   create NAME, print `ready`, wait for a line on
                                                 stdin, write FRAMES frames (pattern below) 1 ms
                                                 apart; with --hold, then wait for stdin to close
    peer.py read NAME FRAMES [--timeout S]       read FRAMES frames, check them, print a JSON summary
    peer.py block NAME                           open NAME, print `ready`, block in read()

Frame k is a 3-D uint16 array of shape (6-k%3, 5, 3) (the first is the largest, so the
channel never grows, which would restart readers at the newest frame) filled with pattern(k), and metadata
Meta(index=k, scale=k/2, tag=[k, k+1, k+2]).
"""

from __future__ import annotations

import ctypes
import json
import sys
import time

import numpy as np

import shmframe


class Meta(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("scale", ctypes.c_double), ("tag", ctypes.c_int16 * 3)]


def pattern(k: int) -> np.ndarray:
    shape = (6 - k % 3, 5, 3)
    return (np.arange(np.prod(shape), dtype=np.uint16).reshape(shape) * 7 + k) % 65521


def write(name: str, frames: int, meta: bool, hold: bool) -> None:
    with shmframe.Writer(name, meta=Meta if meta else None, slots=8) as w:
        print("ready", flush=True)
        sys.stdin.readline()
        for k in range(frames):
            m = Meta(k, k / 2, (k, k + 1, k + 2)) if meta else None
            w.write(pattern(k), meta=m)
            time.sleep(0.001)
        print("written", flush=True)
        if hold:
            sys.stdin.read()  # until the test closes our stdin or kills us


def read(name: str, frames: int, timeout: float) -> None:
    got = []
    with shmframe.Reader(name, timeout=timeout) as r:
        print("ready", flush=True)
        for _ in range(frames):
            f = r.read(timeout=timeout)
            ok = np.array_equal(f.array, pattern(f.index))
            meta = None if f.meta is None else [f.meta.index, f.meta.scale, list(f.meta.tag)]
            got.append({"index": f.index, "ok": ok, "meta": meta, "dtype": str(f.array.dtype)})
    print(json.dumps(got), flush=True)


def block(name: str) -> None:
    r = shmframe.Reader(name, timeout=10)
    try:
        print("ready", flush=True)
        r.read()
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
        raise


def main() -> None:
    cmd, name = sys.argv[1], sys.argv[2]
    if cmd == "write":
        write(name, int(sys.argv[3]), "--meta" in sys.argv, "--hold" in sys.argv)
    elif cmd == "read":
        t = float(sys.argv[sys.argv.index("--timeout") + 1]) if "--timeout" in sys.argv else 10.0
        read(name, int(sys.argv[3]), t)
    elif cmd == "block":
        block(name)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
