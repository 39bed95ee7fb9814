#!/usr/bin/env python3
"""A reader of the article's protocol, written from its description, for interoperability tests.

It attaches as the article's read.py does: it waits for NAME-meta, opens the semaphore, and maps
the frame object once, with the size the metadata gives at that moment. Unlike the article's
reader it copies each frame while holding the semaphore (so a frame it checks is never torn),
polls the count every --poll seconds, and checks every pixel against seed_pattern.py.

Prints one JSON object: {"frames", "first_count", "last_count", "bad", "first_bad", "shapes",
"mapped", "error"}. "error" is null, or says why it stopped early (e.g. a frame larger than the
mapping made at attach time).
"""

import argparse
import json
import mmap
import os
import signal
import sys
import time

import numpy as np
from posix_ipc import BusyError, ExistentialError, Semaphore, SharedMemory

from seed_pattern import MD_SIZE, pattern, unpack_md


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--frames", type=int, default=0, help="stop after this many frames")
    ap.add_argument("--until-count", type=int, default=0, help="stop at this count")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--poll", type=float, default=0.0005)
    ap.add_argument("--expect", help="raw bytes every frame must equal (instead of the pattern)")
    ap.add_argument(
        "--any-count",
        action="store_true",
        help="frames come through a relay that renumbers them: take the pattern's count from the "
        "first byte instead of the metadata",
    )
    ap.add_argument("--progress", action="store_true", help='print "frame COUNT" per frame')
    ap.add_argument(
        "--crash-holding-lock",
        action="store_true",
        help="attach, take the semaphore and die by SIGKILL",
    )
    a = ap.parse_args()
    expect = None
    if a.expect:
        with open(a.expect, "rb") as f:
            expect = np.frombuffer(f.read(), dtype=np.uint8)
    end = time.monotonic() + a.timeout
    out = {
        "frames": 0,
        "first_count": None,
        "last_count": None,
        "bad": 0,
        "first_bad": None,
        "shapes": [],
        "mapped": None,
        "error": None,
    }

    md_buf = None
    while md_buf is None:
        try:
            region = SharedMemory(a.name + "-meta")
            if region.size >= MD_SIZE:
                md_buf = mmap.mmap(region.fd, MD_SIZE)
            region.close_fd()
        except ExistentialError:
            pass
        if md_buf is None:
            if time.monotonic() > end:
                out["error"] = "metadata object never appeared"
                print(json.dumps(out), flush=True)
                return
            time.sleep(0.01)
    sem = None
    while sem is None:
        try:
            sem = Semaphore(a.name)
        except ExistentialError:
            time.sleep(0.01)

    if a.crash_holding_lock:
        sem.acquire()
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    data_buf = None
    last = None
    while True:
        if time.monotonic() > end:
            out["error"] = out["error"] or "timeout"
            break
        try:
            sem.acquire(5)
        except BusyError:
            out["error"] = "semaphore stuck for 5 s"
            break
        (h, w, c), size, count = unpack_md(md_buf)
        frame = None
        if count != 0 and count != last:
            if data_buf is None:
                try:
                    region = SharedMemory(a.name)
                    data_buf = mmap.mmap(region.fd, size)
                    region.close_fd()
                    out["mapped"] = size
                except ExistentialError:
                    pass
            if data_buf is not None:
                if size > len(data_buf):
                    out["error"] = (
                        f"frame {count} of {size} bytes does not fit the {len(data_buf)} bytes "
                        "mapped at attach time"
                    )
                    sem.release()
                    break
                frame = np.frombuffer(data_buf, dtype=np.uint8, count=size).copy()
        sem.release()
        if frame is not None:
            last = count
            shape = [h, w, c]
            if shape not in out["shapes"]:
                out["shapes"].append(shape)
            out["frames"] += 1
            if out["first_count"] is None:
                out["first_count"] = count
            out["last_count"] = count
            if a.progress:
                print(f"frame {count}", flush=True)
            if expect is not None:
                ok = np.array_equal(frame, expect)
            else:
                k = count
                if a.any_count:
                    # pattern byte 0 = (7 k + h + 3 w + 5 c) mod 256; 183 is 7's inverse mod 256.
                    k = ((int(frame[0]) - (h + 3 * w + 5 * c)) * 183) % 256
                ok = np.array_equal(frame.reshape((h, w, c)), pattern((h, w, c), k))
            if not ok:
                out["bad"] += 1
                if out["first_bad"] is None:
                    out["first_bad"] = count
            if a.frames and out["frames"] >= a.frames:
                break
            if a.until_count and count >= a.until_count:
                break
        else:
            time.sleep(a.poll)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
