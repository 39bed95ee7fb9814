"""A writer or reader process for the tests, started with subprocess (a fresh interpreter).

    peer.py write NAME FRAMES [--meta] [--hold]   create NAME, print `ready`, wait for a line on
                                                 stdin, write FRAMES frames (pattern below) 1 ms
                                                 apart; with --hold, then wait for stdin to close
    peer.py read NAME FRAMES [--timeout S]       read FRAMES frames, check them, print a JSON summary
    peer.py drain NAME [--view] [--timeout S]    print `waiting`, open NAME, print `ready`, read
                                                 (or view, zero-copy) every frame until the writer
                                                 closes, print a JSON summary
    peer.py block NAME                           open NAME, print `ready`, block in read()

`--socket PATH` (write, read, drain): the writer serves NAME on the Unix socket PATH, readers
connect to PATH (their NAME argument is not used; pass `-`).

Frame k is a 3-D uint16 array of shape (6-k%3, 5, 3) (the first is the largest, so the
channel never grows, which would restart readers at the newest frame) filled with pattern(k), and metadata
Meta(index=k, scale=k/2, tag=[k, k+1, k+2]).
"""

from __future__ import annotations

import ctypes
import json
import sys
import time
from typing import Optional

import numpy as np

import shmframe


class Meta(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("scale", ctypes.c_double), ("tag", ctypes.c_int16 * 3)]


def pattern(k: int) -> np.ndarray:
    shape = (6 - k % 3, 5, 3)
    return (np.arange(np.prod(shape), dtype=np.uint16).reshape(shape) * 7 + k) % 65521


def write(name: str, frames: int, meta: bool, hold: bool, socket: Optional[str]) -> None:
    with shmframe.Writer(name, meta=Meta if meta else None, slots=8, socket=socket) as w:
        print("ready", flush=True)
        sys.stdin.readline()
        for k in range(frames):
            m = Meta(k, k / 2, (k, k + 1, k + 2)) if meta else None
            w.write(pattern(k), meta=m)
            time.sleep(0.001)
        print("written", flush=True)
        if hold:
            sys.stdin.read()  # until the test closes our stdin or kills us


def open_reader(name: str, timeout: float, socket: Optional[str]) -> shmframe.Reader:
    if socket is None:
        return shmframe.Reader(name, timeout=timeout)
    return shmframe.Reader(socket=socket, timeout=timeout)


def read(name: str, frames: int, timeout: float, socket: Optional[str]) -> None:
    got = []
    with open_reader(name, timeout, socket) as r:
        print("ready", flush=True)
        for _ in range(frames):
            f = r.read(timeout=timeout)
            ok = np.array_equal(f.array, pattern(f.index))
            meta = None if f.meta is None else [f.meta.index, f.meta.scale, list(f.meta.tag)]
            got.append({"index": f.index, "ok": ok, "meta": meta, "dtype": str(f.array.dtype)})
    print(json.dumps(got), flush=True)


def drain(name: str, view: bool, timeout: float, socket: Optional[str]) -> None:
    """Every frame until the writer closes the channel: (index, missed, intact, meta) each."""
    print("waiting", flush=True)
    got = []
    with open_reader(name, timeout, socket) as r:
        print("ready", flush=True)
        summary = {"name": r.name, "socket": r.socket, "view": view, "readonly": True}
        while True:
            try:
                if view:
                    with r.view(timeout=timeout) as f:
                        ok = np.array_equal(f.array, pattern(f.index))
                        summary["readonly"] &= not f.array.flags.writeable
                else:
                    f = r.read(timeout=timeout)
                    ok = np.array_equal(f.array, pattern(f.index))
            except shmframe.ChannelClosed:
                break
            meta = None if f.meta is None else [f.meta.index, f.meta.scale, list(f.meta.tag)]
            got.append([f.index, f.missed, bool(ok), meta])
    summary["frames"] = got
    print(json.dumps(summary), flush=True)


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
    socket = sys.argv[sys.argv.index("--socket") + 1] if "--socket" in sys.argv else None
    t = float(sys.argv[sys.argv.index("--timeout") + 1]) if "--timeout" in sys.argv else 10.0
    if cmd == "write":
        write(name, int(sys.argv[3]), "--meta" in sys.argv, "--hold" in sys.argv, socket)
    elif cmd == "read":
        read(name, int(sys.argv[3]), t, socket)
    elif cmd == "drain":
        drain(name, "--view" in sys.argv, t, socket)
    elif cmd == "block":
        block(name)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
