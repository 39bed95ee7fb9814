#!/usr/bin/env python3
"""Spinning zero-copy p50 of shmframe and iceoryx2, in many short pairs of runs.

`shmframe bench` measures each row in three interleaved rounds. On a virtual machine whose
speed drifts within seconds that still leaves a row's p50 a few tenths of a microsecond apart
between runs, as much as the two transports differ at small payloads. This script runs the
benchmark's own peers (`shmframe bench --peer writer|reader`, spinning zero-copy readers, paced
frames) for shmframe and iceoryx2 back to back, ROUNDS times, alternating which goes first, and
prints each round's p50 difference: its median and how many rounds each transport won.

    scripts/paired_spin.py [--bin target/release/shmframe] [--rounds 20] [--frames N] PAYLOAD...

PAYLOAD is 64B, 640x480x3, 1920x1080x3 or 3840x2160x3; frames are paced as in `shmframe bench`
(1 ms apart, 3 ms at 1920x1080x3, 8 ms at 3840x2160x3).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

# bytes, period between frames (µs), frames per run
PAYLOADS = {
    "64B": (64, 1000, 300),
    "640x480x3": (640 * 480 * 3, 1000, 200),
    "1920x1080x3": (1920 * 1080 * 3, 3000, 100),
    "3840x2160x3": (3840 * 2160 * 3, 8000, 60),
}


def run_pair(binary, transport, nbytes, period_us, frames, tag):
    """One writer and one spinning zero-copy reader; returns the reader's p50 in µs."""
    name = f"paired-{os.getpid()}-{tag}"
    args = ["--transport", transport, "--read", "view", "--wait", "spin",
            "--bytes", str(nbytes), "--name", name, "--period-us", str(period_us),
            "--frames", str(frames), "--seconds", "60", "--readers", "1", "--slots", "4"]
    peer = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True)
    writer = subprocess.Popen([binary, "bench", "--peer", "writer", *args], **peer)
    reader = None
    try:
        if writer.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{transport} writer did not start")
        reader = subprocess.Popen([binary, "bench", "--peer", "reader", *args], **peer)
        if reader.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{transport} reader did not start")
        writer.stdin.write("go\n")
        writer.stdin.flush()
        result = json.loads(reader.stdout.readline())
        writer.stdin.write("done\n")
        writer.stdin.flush()
        writer.stdout.readline()
    finally:
        for p in (reader, writer):
            if p is not None:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    return statistics.median(result["lat"]) / 1000


def iceoryx2_files():
    """iceoryx2's node-management files in /dev/shm, which it keeps after its last node ends."""
    return {f for f in os.listdir("/dev/shm") if f.startswith("iox2_")}


def main():
    shm_before = iceoryx2_files()
    tmp_before = os.path.exists("/tmp/iceoryx2")
    try:
        measure()
    finally:
        # Remove what iceoryx2 left of this run (not what was there before it).
        for f in iceoryx2_files() - shm_before:
            os.remove(os.path.join("/dev/shm", f))
        if not tmp_before:
            shutil.rmtree("/tmp/iceoryx2", ignore_errors=True)


def measure():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/shmframe")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--frames", type=int, help="frames per run (default: per payload)")
    ap.add_argument("payloads", nargs="+", choices=sorted(PAYLOADS))
    a = ap.parse_args()
    print("| payload | rounds | shmframe p50 µs (median) | iceoryx2 p50 µs (median) "
          "| shmframe − iceoryx2, median µs | rounds shmframe ≤ iceoryx2 |")
    print("|---|--:|--:|--:|--:|--:|")
    for payload in a.payloads:
        nbytes, period, frames = PAYLOADS[payload]
        frames = a.frames or frames
        shm, ice = [], []
        for i in range(a.rounds):
            order = ("shmframe", "iceoryx2") if i % 2 == 0 else ("iceoryx2", "shmframe")
            got = {t: run_pair(a.bin, t, nbytes, period, frames, f"{i}{t[0]}") for t in order}
            shm.append(got["shmframe"])
            ice.append(got["iceoryx2"])
        diff = [s - i for s, i in zip(shm, ice)]
        wins = sum(d <= 0 for d in diff)
        print(f"| {payload} | {a.rounds} | {statistics.median(shm):.2f} | "
              f"{statistics.median(ice):.2f} | {statistics.median(diff):+.2f} | {wins} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
