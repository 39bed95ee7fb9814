"""Receive latency and frame rate of shmframe next to the article's protocol and
``multiprocessing.shared_memory``, writer and reader in separate processes::

    python -m shmframe.bench                 # 640x480x3 and 1920x1080x3, about a minute
    python -m shmframe.bench --seconds 1     # quicker
    python -m shmframe.bench --sizes ""      # only the comparison with the Rust reader

Transports (each a writer process and a reader process started with subprocess):

- ``shmframe read``: :meth:`shmframe.Reader.read` (one copy, taken while the slot is pinned),
  futex wake-up.
- ``shmframe view``: :meth:`shmframe.Reader.view` (zero-copy, slot pinned), futex wake-up.
- ``article posix_ipc``: the article's protocol, written from its description: object
  ``NAME-meta`` (the MD struct: int32 x3, 4 bytes padding, int64 size, int64 count), object
  ``NAME`` (the frame), POSIX semaphore ``NAME`` held around each update and each read. The
  article's reader has no notification; this one polls ``count`` every 0.2 ms (the article
  sleeps 30 ms) and copies the frame while holding the semaphore.
- ``mp.shared_memory``: the standard library's ``multiprocessing.shared_memory``: a 16-byte
  header (count, then the frame's length) and the frame, no lock (frames may tear), polled
  every 0.2 ms.

Latency: the writer stores ``time.monotonic_ns()`` in the frame's first 8 bytes just before
publishing; the reader subtracts it from the clock once it holds the frame (copied, or viewed).
Measured with the writer paced at ``--fps`` (default 100). Frame rate: the writer publishes as
fast as it can; frames/s is what the reader received.

Python next to Rust (64 B frames, sleeping readers): ONE writer process publishes a 64-byte
``uint8`` frame every 1 ms (``--fps64``) for the whole comparison, and the readers take turns
on its channel, one at a time, in ``--rounds`` rounds (the order rotated each round), each for
``--seconds``: :meth:`shmframe.Reader.view`, :meth:`shmframe.Reader.read`,
``async with reader.aview()`` in the standard library's asyncio event loop and (if uvloop is
installed) in uvloop's, and the Rust reader,
``shmframe read NAME --headless --json`` (``Reader::next_into``, futex wake-up; the binary is
``--shmframe-bin``, else ``$SHMFRAME_BIN``, else ``shmframe`` on ``PATH``). Every reader's
latency is its clock once it holds the frame minus the frame's ``timestamp_ns`` (the library's
publish time), for frames published after it opened the channel, in whole µs (rounded down)
with nearest-rank percentiles, as ``shmframe read --json`` reports them; a reader's p50 is the
median of its rounds' p50s (the command reports percentiles, not samples). Reported: each
Python reader's p50 minus the Rust reader's p50 ("added"), with a ✓ when it is at most 10 µs,
and each asyncio reader's p50 minus the blocking ``Reader.view()``'s, with the same bound. Where
the kernel has per-thread time slices (Linux 6.12 and later), two more readers take their turns:
``shmframe read --low-latency`` and ``Reader.view()`` in a process that called
:func:`shmframe.prefer_low_latency` first, the second compared with the first.

asyncio's own wake-up on the same machine, with no shmframe in it: a process writes its clock
into a pipe every 1 ms (``--fps64``) and its parent reads each write with a blocking
``os.read``, then (alternated, ``--rounds`` rounds) in an asyncio event loop, the pipe watched
once with ``loop.add_reader`` and each read handed to the awaiting coroutine through a future,
as ``aview()`` does; the same in uvloop's event loop if uvloop is installed. The difference of
the p50s is what any asyncio reader of a descriptor pays on this machine in that event loop, the
floor under the asyncio reader's "added" figure.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np

TRANSPORTS = ["shmframe read", "shmframe view", "article posix_ipc", "mp.shared_memory"]
POLL = 0.0002
# Python next to Rust: each reader and how it reads (`_reader_vs_rust` MODE; None: the Rust
# `shmframe read` command), and (ADDED_MAX_US) what a Python reader may add to the Rust p50.
VS_RUST = {"Rust shmframe read": None, "Python Reader.view()": "view",
           "Python Reader.read()": "read", "Python await aview()": "aview",
           "Python aview() uvloop": "aview-uvloop",
           "Rust read --low-latency": "rust-ll", "Python view() low-latency": "view-ll"}
# The Rust readers' modes (the `shmframe read` command; `rust-ll` with --low-latency).
RUST_MODES = (None, "rust-ll")
# The Rust reader each Python reader is compared with (default: "Rust shmframe read"): a reader
# that asked for a short time slice with the Rust reader that did the same.
BASELINE = {"Python view() low-latency": "Rust read --low-latency"}
# The asyncio readers are also compared with the blocking reader they stand in for.
ASYNC_VS = {"Python await aview()": "Python Reader.view()",
            "Python aview() uvloop": "Python Reader.view()"}
ADDED_MAX_US = 10.0


def has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run_in_loop(main: Any, loop: str) -> Any:
    """Runs coroutine ``main`` in a new event loop: the standard library's (``asyncio``) or
    uvloop's (``uvloop``)."""
    import asyncio

    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def has_short_slices() -> bool:
    """True if this kernel gives a thread the short time slice ``prefer_low_latency`` asks for
    (asked in a thread of its own, which then ends)."""
    import threading

    import shmframe

    got: List[bool] = []

    def ask() -> None:
        try:
            shmframe.prefer_low_latency()
            got.append(True)
        except shmframe.Error:
            got.append(False)

    t = threading.Thread(target=ask)
    t.start()
    t.join()
    return got == [True]


def vs_rust_readers() -> Dict[str, Optional[str]]:
    """The readers of the comparison with the Rust reader: the uvloop one only where uvloop is
    installed, the low-latency ones only where the kernel has per-thread time slices."""
    short = has_short_slices()
    return {k: m for k, m in VS_RUST.items()
            if (m != "aview-uvloop" or has_uvloop()) and (m not in ("rust-ll", "view-ll") or short)}


class MD(ctypes.Structure):
    _fields_ = [
        ("shape_0", ctypes.c_int32),
        ("shape_1", ctypes.c_int32),
        ("shape_2", ctypes.c_int32),
        ("size", ctypes.c_int64),
        ("count", ctypes.c_int64),
    ]


def stamp(frame: np.ndarray) -> None:
    frame.reshape(-1)[:8].view(np.uint64)[0] = time.monotonic_ns()


def stamp_of(buf: Any) -> int:
    return int(np.frombuffer(buf, dtype=np.uint64, count=1)[0])


# --- writers: create, print "ready", wait for a line on stdin, publish, close -------------


class ShmframeWriter:
    def __init__(self, name: str, shape: tuple) -> None:
        import shmframe

        self.w = shmframe.Writer(name, slots=4)

    def publish(self, frame: np.ndarray) -> None:
        self.w.write(frame)

    def close(self) -> None:
        self.w.close()


class ArticleWriter:
    """The article's ShmWrite, reduced to its protocol."""

    def __init__(self, name: str, shape: tuple) -> None:
        import posix_ipc

        size = int(np.prod(shape))
        self.md_region = posix_ipc.SharedMemory(name + "-meta", posix_ipc.O_CREX, size=ctypes.sizeof(MD))
        self.md_buf = mmap.mmap(self.md_region.fd, self.md_region.size)
        self.md_region.close_fd()
        self.region = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=size)
        self.buf = mmap.mmap(self.region.fd, size)
        self.region.close_fd()
        self.sem = posix_ipc.Semaphore(name, posix_ipc.O_CREX, initial_value=1)
        self.md = MD(shape[0], shape[1], shape[2], size, 0)
        self.name = name

    def publish(self, frame: np.ndarray) -> None:
        self.md.count += 1
        self.sem.acquire()
        self.md_buf[:] = bytes(self.md)
        self.buf[:] = frame.tobytes()
        self.sem.release()

    def close(self, done: bool = True) -> None:
        import posix_ipc

        self.sem.acquire()
        self.md.count = -1  # tells our reader the run is over
        self.md_buf[:] = bytes(self.md)
        self.sem.release()
        time.sleep(0.2)
        self.md_buf.close()
        self.buf.close()
        posix_ipc.unlink_shared_memory(self.name + "-meta")
        posix_ipc.unlink_shared_memory(self.name)
        self.sem.unlink()
        self.sem.close()


class MpWriter:
    def __init__(self, name: str, shape: tuple) -> None:
        from multiprocessing import shared_memory

        self.size = int(np.prod(shape))
        self.shm = shared_memory.SharedMemory(name, create=True, size=16 + self.size)
        self.head = np.ndarray((2,), np.int64, buffer=self.shm.buf[:16])
        self.data = np.ndarray((self.size,), np.uint8, buffer=self.shm.buf[16:])
        self.count = 0

    def publish(self, frame: np.ndarray) -> None:
        self.data[:] = frame.reshape(-1)
        self.count += 1
        self.head[1] = self.size
        self.head[0] = self.count

    def close(self) -> None:
        self.head[0] = -1
        time.sleep(0.2)
        del self.head, self.data
        self.shm.close()
        self.shm.unlink()


WRITERS = {
    "shmframe read": ShmframeWriter,
    "shmframe view": ShmframeWriter,
    "article posix_ipc": ArticleWriter,
    "mp.shared_memory": MpWriter,
}


def run_writer(transport: str, name: str, shape: tuple, seconds: float, fps: float) -> None:
    w = WRITERS[transport](name, shape)
    frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    print("ready", flush=True)
    sys.stdin.readline()
    n = 0
    t0 = time.monotonic()
    next_at = t0
    try:
        while time.monotonic() - t0 < seconds:
            stamp(frame)
            w.publish(frame)
            n += 1
            if fps > 0:
                next_at += 1 / fps
                time.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        w.close()
    print(json.dumps({"published": n, "seconds": time.monotonic() - t0}), flush=True)


def run_writer_until_stop(name: str, nbytes: int, fps: float) -> None:
    """Publishes ``nbytes``-byte frames at ``fps`` until a line arrives on stdin."""
    import threading

    import shmframe

    stop = threading.Event()
    with shmframe.Writer(name, slots=4) as w:
        frame = np.zeros(nbytes, np.uint8)
        print("ready", flush=True)
        threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
        n, next_at = 0, time.monotonic()
        while not stop.is_set():
            w.write(frame)
            n += 1
            next_at += 1 / fps
            time.sleep(max(0.0, next_at - time.monotonic()))
    print(json.dumps({"published": n}), flush=True)


# --- readers: attach, print "ready", receive until the writer ends, print a JSON summary ----


def read_vs_rust(name: str, mode: str, frames: int) -> None:
    """Receives ``frames`` frames (sleeping; ``mode`` is ``view``, ``read``, ``aview`` (in the
    standard library's asyncio event loop), ``aview-uvloop``, or ``view-ll`` (``view`` after
    :func:`shmframe.prefer_low_latency`)), prints the latencies (frame's ``timestamp_ns`` to
    the clock once the frame is in hand) of those published after the channel was opened."""
    import shmframe

    lat: List[int] = []

    def blocking(r: "shmframe.Reader", opened: int) -> None:
        for _ in range(frames):
            if mode in ("view", "view-ll"):
                with r.view(timeout=30) as f:
                    now = time.monotonic_ns()
            else:
                f = r.read(timeout=30)
                now = time.monotonic_ns()
            if f.timestamp_ns >= opened:
                lat.append(now - f.timestamp_ns)

    async def awaiting(r: "shmframe.Reader", opened: int) -> None:
        for _ in range(frames):
            async with r.aview(timeout=30) as f:
                now = time.monotonic_ns()
            if f.timestamp_ns >= opened:
                lat.append(now - f.timestamp_ns)

    if mode == "view-ll":
        shmframe.prefer_low_latency()
    with shmframe.Reader(name, timeout=30) as r:
        opened = time.monotonic_ns()
        if mode.startswith("aview"):
            run_in_loop(awaiting(r, opened), "uvloop" if mode == "aview-uvloop" else "asyncio")
        else:
            blocking(r, opened)
    print(json.dumps({"latencies_ns": lat}), flush=True)


def read_pipe(mode: str, frames: int, fps: float) -> None:
    """asyncio's floor: a child writes its clock into a pipe ``frames`` times at ``fps``; this
    process reads each write (``mode``: ``block``, a blocking ``os.read``; ``asyncio`` or
    ``uvloop``, the pipe watched once with ``loop.add_reader`` in that event loop, the read
    handed to the awaiting coroutine) and prints the latencies."""
    import asyncio
    import struct

    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        next_at = time.monotonic() + 0.05
        for _ in range(frames):
            time.sleep(max(0.0, next_at - time.monotonic()))
            os.write(w, struct.pack("q", time.monotonic_ns()))
            next_at += 1 / fps
        os._exit(0)
    os.close(w)
    lat: List[int] = []

    def took(b: bytes) -> None:
        lat.append(time.monotonic_ns() - struct.unpack("q", b)[0])

    async def awaiting() -> None:
        loop = asyncio.get_running_loop()
        woken: List[Optional["asyncio.Future[bytes]"]] = [None]

        def on_ready() -> None:
            b = os.read(r, 8)
            f = woken[0]
            if f is not None and not f.done():
                f.set_result(b)

        loop.add_reader(r, on_ready)
        for _ in range(frames):
            woken[0] = loop.create_future()
            took(await woken[0])
        loop.remove_reader(r)

    if mode in ("asyncio", "uvloop"):
        run_in_loop(awaiting(), mode)
    else:
        for _ in range(frames):
            took(os.read(r, 8))
    os.close(r)
    os.waitpid(child, 0)
    print(json.dumps({"latencies_ns": lat}), flush=True)


def read_shmframe(name: str, view: bool) -> List[int]:
    import shmframe

    lat = []
    with shmframe.Reader(name, timeout=30) as r:
        print("ready", flush=True)
        while True:
            try:
                if view:
                    with r.view() as f:
                        lat.append(time.monotonic_ns() - stamp_of(f.array))
                else:
                    f = r.read()
                    lat.append(time.monotonic_ns() - stamp_of(f.array))
            except shmframe.WriterGone:
                return lat


def read_article(name: str) -> List[int]:
    import posix_ipc

    deadline = time.monotonic() + 30
    while True:
        try:
            md_region = posix_ipc.SharedMemory(name + "-meta")
            region = posix_ipc.SharedMemory(name)
            sem = posix_ipc.Semaphore(name)
            break
        except posix_ipc.ExistentialError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    md_buf = mmap.mmap(md_region.fd, ctypes.sizeof(MD))
    md_region.close_fd()
    buf = mmap.mmap(region.fd, region.size)
    region.close_fd()
    print("ready", flush=True)
    lat, last = [], 0
    md = MD()
    while True:
        sem.acquire()
        ctypes.memmove(ctypes.addressof(md), md_buf[:], ctypes.sizeof(MD))
        frame = None
        if md.count > 0 and md.count != last:
            frame = np.frombuffer(buf, np.uint8, count=md.size).copy()
        sem.release()
        if md.count == -1:
            break
        if frame is None:
            time.sleep(POLL)
            continue
        lat.append(time.monotonic_ns() - stamp_of(frame))
        last = md.count
    md_buf.close()
    buf.close()
    sem.close()
    return lat


def read_mp(name: str) -> List[int]:
    from multiprocessing import resource_tracker, shared_memory

    deadline = time.monotonic() + 30
    while True:
        try:
            shm = shared_memory.SharedMemory(name)
            break
        except FileNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    # Before Python 3.13 an attaching process registers the segment with its resource tracker,
    # which unlinks it when this process exits (the problem the article ran into): undo that.
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    head = np.ndarray((2,), np.int64, buffer=shm.buf[:16])
    print("ready", flush=True)
    lat, last = [], 0
    while True:
        count = int(head[0])
        if count == -1:
            break
        if count == 0 or count == last:
            time.sleep(POLL)
            continue
        frame = np.frombuffer(shm.buf, np.uint8, count=int(head[1]), offset=16).copy()
        lat.append(time.monotonic_ns() - stamp_of(frame))
        last = count
    del head
    shm.close()
    return lat


def run_reader(transport: str, name: str) -> None:
    if transport.startswith("shmframe"):
        lat = read_shmframe(name, view=transport.endswith("view"))
    elif transport.startswith("article"):
        lat = read_article(name)
    else:
        lat = read_mp(name)
    print(json.dumps({"latencies_ns": lat}), flush=True)


# --- the driver --------------------------------------------------------------------------


def one_run(transport: str, shape: tuple, seconds: float, fps: float) -> Dict[str, Any]:
    name = f"bench-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    me = [sys.executable, "-m", "shmframe.bench"]
    dims = "x".join(map(str, shape))
    writer = subprocess.Popen(
        me + ["_writer", transport, name, dims, str(seconds), str(fps)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    reader: Optional[subprocess.Popen] = None
    try:
        assert writer.stdout is not None and writer.stdin is not None
        if writer.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{transport} writer did not start")
        reader = subprocess.Popen(me + ["_reader", transport, name], stdout=subprocess.PIPE, text=True)
        assert reader.stdout is not None
        if reader.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{transport} reader did not start")
        writer.stdin.write("go\n")
        writer.stdin.flush()
        wres = json.loads(writer.stdout.readline())
        rres = json.loads(reader.stdout.readline())
        writer.wait(timeout=30)
        reader.wait(timeout=30)
    finally:
        for p in (writer, reader):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    lat = np.array(rres["latencies_ns"], dtype=np.float64) / 1000
    return {
        "received": len(lat),
        "published": wres["published"],
        "fps": len(lat) / wres["seconds"],
        "p50_us": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
        "p99_us": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
    }


def nearest_rank(values_us: List[int], p: float) -> Optional[int]:
    """Percentile ``p`` (0-100) by nearest rank, as ``shmframe read --json`` computes it."""
    if not values_us:
        return None
    s = sorted(values_us)
    rank = int(np.ceil(p / 100 * len(s)))
    return s[min(max(rank, 1), len(s)) - 1]


def shmframe_bin(given: Optional[str]) -> Optional[str]:
    import shutil

    return given or os.environ.get("SHMFRAME_BIN") or shutil.which("shmframe")


def vs_rust(bin_path: str, seconds: float, fps: float, rounds: int) -> List[Dict[str, Any]]:
    """The Python readers next to the Rust reader on one writer's 64-byte frames (see the
    module's docstring). Returns one row per reader."""
    name = f"bench-{os.getpid()}-vs-rust"
    me = [sys.executable, "-m", "shmframe.bench"]
    frames = max(10, int(seconds * fps))
    writer = subprocess.Popen(me + ["_writer_until", name, "64", str(fps)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    # Per reader: its p50 in each round, and (Python readers) every latency, whole us.
    readers = vs_rust_readers()
    p50s: Dict[str, List[int]] = {r: [] for r in readers}
    lat_us: Dict[str, List[int]] = {r: [] for r in readers}
    try:
        assert writer.stdout is not None and writer.stdin is not None
        if writer.stdout.readline().strip() != "ready":
            raise RuntimeError("the 64-byte writer did not start")
        for k in range(rounds):
            names = list(readers)
            order = names[k % len(names):] + names[:k % len(names)]
            for reader in order:
                mode = readers[reader]
                if mode in RUST_MODES:
                    cmd = [bin_path, "read", name, "--headless", "--json", "--frames", str(frames),
                           "--timeout", "30"] + (["--low-latency"] if mode == "rust-ll" else [])
                    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True, check=True, timeout=seconds + 60)
                    p50s[reader].append(int(json.loads(out.stdout)["latency_us_p50"]))
                else:
                    out = subprocess.run(me + ["_reader_vs_rust", mode, name, str(frames)],
                                         stdout=subprocess.PIPE, text=True, check=True,
                                         timeout=seconds + 60)
                    v = [ns // 1000 for ns in json.loads(out.stdout)["latencies_ns"]]
                    p50s[reader].append(nearest_rank(v, 50))
                    lat_us[reader].extend(v)
    finally:
        if writer.poll() is None:
            assert writer.stdin is not None
            try:
                writer.stdin.write("stop\n")
                writer.stdin.flush()
                writer.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                writer.kill()
                writer.wait()
    # The CLI reports percentiles, not samples: every reader's p50 is the median of its rounds'.
    rows = []
    for reader, mode in readers.items():
        p50 = nearest_rank(p50s[reader], 50)
        row: Dict[str, Any] = {"reader": reader, "p50_us": p50, "p50_per_round_us": p50s[reader]}
        if mode not in RUST_MODES:
            rust_p50 = nearest_rank(p50s[BASELINE.get(reader, "Rust shmframe read")], 50)
            row["p99_us"] = nearest_rank(lat_us[reader], 99)
            row["frames"] = len(lat_us[reader])
            if p50 is not None and rust_p50 is not None:
                row["added_p50_us"] = p50 - rust_p50
                row["ok"] = p50 - rust_p50 <= ADDED_MAX_US
            blocking = ASYNC_VS.get(reader)
            blocking_p50 = nearest_rank(p50s[blocking], 50) if blocking else None
            if p50 is not None and blocking_p50 is not None:
                row["added_over_blocking_p50_us"] = p50 - blocking_p50
                row["ok_over_blocking"] = p50 - blocking_p50 <= ADDED_MAX_US
        rows.append(row)
    return rows


def print_vs_rust(rows: List[Dict[str, Any]], seconds: float, fps: float, rounds: int) -> None:
    print(f"\n64 B frames, sleeping readers, one writer at {fps:g} fps; the readers take turns "
          f"({rounds} rounds of {seconds:g} s each); latency in whole us:")
    print(f"{'reader':<26} {'p50 us':>7} {'p99 us':>7} {'frames':>7}  {'p50 per round':<14} "
          "added p50 over the Rust reader (of the same time slice)")
    for r in rows:
        def cell(key: str) -> str:
            v = r.get(key)
            return "-" if v is None else str(v)
        if "added_p50_us" in r:
            added = (f"{'✓' if r['ok'] else '✗'} {r['added_p50_us']:+d} us "
                     f"(≤ {ADDED_MAX_US:g} us)")
        else:
            added = "-"
        if "added_over_blocking_p50_us" in r:
            added += (f"; over {ASYNC_VS[r['reader']][7:]}: "
                      f"{'✓' if r['ok_over_blocking'] else '✗'} "
                      f"{r['added_over_blocking_p50_us']:+d} us (≤ {ADDED_MAX_US:g} us)")
        rounds_us = ",".join(map(str, r["p50_per_round_us"]))
        print(f"{r['reader']:<26} {cell('p50_us'):>7} {cell('p99_us'):>7} {cell('frames'):>7}  "
              f"{rounds_us:<14} {added}", flush=True)
    if not has_uvloop():
        print("(uvloop is not installed (pip install uvloop): no uvloop row)")
    if not any(r["reader"] == "Rust read --low-latency" for r in rows):
        print("(this kernel has no per-thread time slices (Linux 6.12 and later): no "
              "low-latency rows)")


def asyncio_floor(seconds: float, fps: float, rounds: int) -> Dict[str, Any]:
    """The event loops' own wake-up next to a blocking read of a pipe (see the module's
    docstring): each loop's p50 and what it adds to the blocking read's (``uvloop`` keys are
    None where uvloop is not installed)."""
    me = [sys.executable, "-m", "shmframe.bench"]
    frames = max(10, int(seconds * fps))
    modes = ["block", "asyncio"] + (["uvloop"] if has_uvloop() else [])
    p50s: Dict[str, List[int]] = {m: [] for m in modes}
    for k in range(rounds):
        for mode in modes[k % len(modes):] + modes[:k % len(modes)]:
            out = subprocess.run(me + ["_pipe_reader", mode, str(frames), str(fps)],
                                 stdout=subprocess.PIPE, text=True, check=True,
                                 timeout=seconds + 60)
            v = [ns // 1000 for ns in json.loads(out.stdout)["latencies_ns"]]
            p50s[mode].append(nearest_rank(v, 50))
    block = nearest_rank(p50s["block"], 50)
    floor: Dict[str, Any] = {"blocking_p50_us": block}
    for loop in ("asyncio", "uvloop"):
        p50 = nearest_rank(p50s[loop], 50) if loop in p50s else None
        floor[f"{loop}_p50_us"] = p50
        added = None if block is None or p50 is None else p50 - block
        floor["added_p50_us" if loop == "asyncio" else "uvloop_added_p50_us"] = added
    return floor


def print_asyncio_floor(f: Dict[str, Any], fps: float) -> None:
    print(f"\nThe event loop's own wake-up, no shmframe (a pipe written at {fps:g} fps): blocking "
          f"os.read p50 {f['blocking_p50_us']} us; asyncio add_reader p50 {f['asyncio_p50_us']} "
          f"us: {f['added_p50_us']:+d} us", end="")
    if f["uvloop_p50_us"] is None:
        print("; uvloop is not installed (pip install uvloop): not measured", flush=True)
    else:
        print(f"; uvloop add_reader p50 {f['uvloop_p50_us']} us: "
              f"{f['uvloop_added_p50_us']:+d} us", flush=True)


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_writer":
        t, name, dims, seconds, fps = argv[1:6]
        run_writer(t, name, tuple(int(d) for d in dims.split("x")), float(seconds), float(fps))
        return
    if argv and argv[0] == "_reader":
        run_reader(argv[1], argv[2])
        return
    if argv and argv[0] == "_writer_until":
        run_writer_until_stop(argv[1], int(argv[2]), float(argv[3]))
        return
    if argv and argv[0] == "_reader_vs_rust":
        read_vs_rust(argv[2], argv[1], int(argv[3]))
        return
    if argv and argv[0] == "_pipe_reader":
        read_pipe(argv[1], int(argv[2]), float(argv[3]))
        return
    p = argparse.ArgumentParser(prog="python -m shmframe.bench", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="length of each run (default 3)")
    p.add_argument("--fps", type=float, default=100.0, help="writer rate of the latency runs")
    p.add_argument("--sizes", default="640x480,1920x1080", help="WIDTHxHEIGHT list (3 channels)")
    p.add_argument("--transports", default=",".join(TRANSPORTS), help="comma-separated subset")
    p.add_argument("--json", action="store_true", help="print the results as JSON as well")
    p.add_argument("--fps64", type=float, default=1000.0,
                   help="writer rate of the comparison with the Rust reader (default 1000)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds of the comparison with the Rust reader (default 3)")
    p.add_argument("--shmframe-bin", help="the `shmframe` binary for the Rust reader "
                   "(default: $SHMFRAME_BIN, else `shmframe` on PATH)")
    args = p.parse_args(argv)
    transports = [t.strip() for t in args.transports.split(",")]
    try:
        import posix_ipc  # noqa: F401
    except ImportError:
        print("posix_ipc is not installed (pip install posix_ipc): skipping the article's protocol")
        transports = [t for t in transports if not t.startswith("article")]
    results = []
    sizes = [v for v in args.sizes.split(",") if v]
    if sizes:
        print(f"{'transport':<19} {'frame':>12} {'frames/s':>9} {'p50 us':>8} {'p99 us':>8}  "
              f"(latency at {args.fps:g} fps; frames/s with the writer unpaced, "
              f"{args.seconds:g} s runs)")
    for size in sizes:
        w, h = (int(v) for v in size.split("x"))
        shape = (h, w, 3)
        for t in transports:
            paced = one_run(t, shape, args.seconds, args.fps)
            flat = one_run(t, shape, args.seconds, 0)
            row = {"transport": t, "shape": list(shape), "fps": flat["fps"],
                   "published_fps": flat["published"] / args.seconds,
                   "p50_us": paced["p50_us"], "p99_us": paced["p99_us"]}
            results.append(row)
            print(f"{t:<19} {f'{w}x{h}x3':>12} {row['fps']:>9.0f} {row['p50_us']:>8.0f} "
                  f"{row['p99_us']:>8.0f}", flush=True)
    bin_path = shmframe_bin(args.shmframe_bin)
    vs: List[Dict[str, Any]] = []
    floor: Optional[Dict[str, Any]] = None
    if bin_path is None:
        print("\nno `shmframe` binary (--shmframe-bin, $SHMFRAME_BIN or PATH): skipping the "
              "comparison with the Rust reader")
    else:
        vs = vs_rust(bin_path, args.seconds, args.fps64, args.rounds)
        print_vs_rust(vs, args.seconds, args.fps64, args.rounds)
        floor = asyncio_floor(args.seconds, args.fps64, args.rounds)
        print_asyncio_floor(floor, args.fps64)
    if args.json:
        print(json.dumps({"sizes": results, "vs_rust": vs, "asyncio_floor": floor}))


if __name__ == "__main__":
    main()
