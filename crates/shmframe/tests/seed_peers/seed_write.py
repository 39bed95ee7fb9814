#!/usr/bin/env python3
"""A writer of the article's protocol, written from its description, for interoperability tests.

Like the article's write.py it opens NAME-meta (O_CREAT, 32 bytes), creates the semaphore NAME
exclusively (replacing a leftover one) and releases it to 1, creates NAME at the first frame sized
for it, and updates the metadata and the frame while holding the semaphore. Frames carry the
pattern of seed_pattern.py. Unlike the article's writer it can change the frame size (--shape2):
it enlarges NAME under the semaphore (never shrinks it) and maps it again.

Prints one JSON object at the end: {"frames": N, "last_count": N}.
"""

import argparse
import json
import mmap
import os
import signal
import sys
import time

import posix_ipc
from posix_ipc import O_CREAT, O_CREX, ExistentialError, Semaphore, SharedMemory

from seed_pattern import MD_SIZE, pack_md, parse_shape, pattern


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--shape", default="480x640x3")
    ap.add_argument("--shape2", help="shape of the frames after --switch-at")
    ap.add_argument("--switch-at", type=int, default=0)
    ap.add_argument("--fps", type=float, default=0.0, help="0: as fast as possible")
    ap.add_argument(
        "--crash-holding-lock",
        action="store_true",
        help="after the frames, take the semaphore and die by SIGKILL",
    )
    ap.add_argument(
        "--wait-stdin",
        action="store_true",
        help="after the frames, wait for stdin to close before removing the objects",
    )
    ap.add_argument("--keep", action="store_true", help="leave the objects behind")
    a = ap.parse_args()
    shape1 = parse_shape(a.shape)
    shape2 = parse_shape(a.shape2) if a.shape2 else shape1

    md_region = SharedMemory(a.name + "-meta", O_CREAT, size=MD_SIZE)
    md_buf = mmap.mmap(md_region.fd, MD_SIZE)
    md_region.close_fd()
    try:
        sem = Semaphore(a.name, O_CREX)
    except ExistentialError:
        Semaphore(a.name, O_CREAT).unlink()
        sem = Semaphore(a.name, O_CREX)
    sem.release()

    data_buf = None
    count = 0
    period = 1.0 / a.fps if a.fps > 0 else 0.0
    t0 = time.monotonic()
    for k in range(1, a.frames + 1):
        shape = shape2 if a.switch_at and k > a.switch_at else shape1
        frame = pattern(shape, k)
        size = frame.nbytes
        sem.acquire()
        if data_buf is None or size > len(data_buf):
            # The first frame creates the object; a larger one enlarges it (ftruncate) while the
            # semaphore keeps readers out.
            region = SharedMemory(a.name, O_CREAT, size=max(size, len(data_buf or b"")))
            if data_buf is not None:
                data_buf.close()
            data_buf = mmap.mmap(region.fd, region.size)
            region.close_fd()
        md_buf[:] = pack_md(shape, size, k)
        data_buf[:size] = frame.tobytes()
        sem.release()
        count = k
        if period:
            delay = t0 + k * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    if a.crash_holding_lock:
        sem.acquire()
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    if a.wait_stdin:
        sys.stdin.read()

    if not a.keep:
        sem.acquire()
        posix_ipc.unlink_shared_memory(a.name + "-meta")
        if data_buf is not None:
            posix_ipc.unlink_shared_memory(a.name)
        sem.release()
        sem.unlink()
    print(json.dumps({"frames": count, "last_count": count}), flush=True)


if __name__ == "__main__":
    main()
