"""asyncio readers (`aread`, `aview`, `async for`) and examples/python/preview_server.py.

Writers run as separate processes (fresh interpreters) where the test is about processes; the
cancellation tests use a writer in this process.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import shmframe
from conftest import PREFIX

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "python" / "preview_server.py"

# A writer process: `NAME FRAMES INTERVAL SLOTS [--hold]`. Creates NAME, prints `ready`, waits
# for a line on stdin, publishes frame k = full(8, k, uint32) FRAMES times INTERVAL s apart,
# prints `written`; with --hold it then waits for stdin to close before closing the channel.
WRITER = """
import sys, time
import numpy as np
import shmframe
name, frames, interval, slots = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
with shmframe.Writer(name, slots=slots) as w:
    print("ready", flush=True)
    sys.stdin.readline()
    for k in range(frames):
        w.write(np.full(8, k, np.uint32))
        time.sleep(interval)
    print("written", flush=True)
    if "--hold" in sys.argv:
        sys.stdin.read()
"""

# A process that waits on silent channels (argv) with asyncio for about 2 s and prints the CPU
# time it used meanwhile (every thread of the process, the waker thread included) as JSON.
IDLE = """
import asyncio, json, sys, time
import shmframe
readers = [shmframe.Reader(n, timeout=10) for n in sys.argv[1:]]
async def main():
    tasks = [asyncio.create_task(r.aread()) for r in readers]
    await asyncio.sleep(0.5)  # every reader armed and waiting
    t0, c0 = time.monotonic(), time.process_time()
    await asyncio.sleep(2)
    t1, c1 = time.monotonic(), time.process_time()
    waiting = sum(not t.done() for t in tasks)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"wall": t1 - t0, "cpu": c1 - c0, "waiting": waiting}), flush=True)
asyncio.run(main())
for r in readers:
    r.close()
"""

# The preview server test's writer: `BGRNAME GREYNAME`. Publishes, 50 times a second until stdin
# closes, a 120x160 BGR frame (left half B,G,R = 200,100,30; right half pure red) on BGRNAME and
# a 60x80 grey frame of 77 on GREYNAME.
PREVIEW_WRITER = """
import sys, threading, time
import numpy as np
import shmframe
bgr = np.zeros((120, 160, 3), np.uint8)
bgr[:, :80] = (200, 100, 30)
bgr[:, 80:] = (0, 0, 255)
grey = np.full((60, 80), 77, np.uint8)
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
with shmframe.Writer(sys.argv[1]) as a, shmframe.Writer(sys.argv[2]) as b:
    print("ready", flush=True)
    while not done.is_set():
        a.write(bgr)
        b.write(grey)
        time.sleep(0.02)
"""


class Procs:
    """Python child processes (`python -c SCRIPT ARGS`), killed when the test ends."""

    def __init__(self) -> None:
        self.started: list = []

    def start(self, script: str, *args: str) -> subprocess.Popen:
        return self.start_argv("-c", script, *args)

    def start_argv(self, *argv: str) -> subprocess.Popen:
        p = subprocess.Popen(
            [sys.executable, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started.append(p)
        return p

    def stop_all(self) -> None:
        # Closing stdin lets writers finish and remove their channels; then kill what is left.
        for p in self.started:
            if p.poll() is None:
                try:
                    p.stdin.close()
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for p in self.started:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        for p in self.started:
            p.wait(timeout=30)
            for s in (p.stdin, p.stdout, p.stderr):
                s.close()


@pytest.fixture
def procs():
    ps = Procs()
    yield ps
    ps.stop_all()


def names(base: str, n: int) -> list:
    return [f"{base}-{k}" for k in range(n)]


@pytest.fixture(params=["asyncio", "uvloop"])
def loop(request) -> str:
    """The event loop a test's coroutines run in: the standard library's, then uvloop's (a
    common replacement, with its own `add_reader`); skipped, visibly, without uvloop."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    return request.param


def run(coro, limit: float = 60, loop: str = "asyncio"):
    """Runs `coro` in a new event loop of kind `loop` (this thread), failing the test after
    `limit` seconds."""
    main = asyncio.wait_for(coro, limit)
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def expect(p: subprocess.Popen, line: str) -> None:
    got = p.stdout.readline().strip()
    assert got == line, f"expected {line!r}, got {got!r}: {p.stderr.read() if not got else ''}"


def test_one_loop_reads_64_channels_from_64_writer_processes(name, procs):
    frames = 100
    chans = names(name, 64)
    writers = [procs.start(WRITER, n, str(frames), "0.01", "64") for n in chans]
    for w in writers:
        expect(w, "ready")
    readers = [shmframe.Reader(n, timeout=10) for n in chans]

    async def consume(r: shmframe.Reader) -> list:
        got = []
        async for f in r:  # ends when the writer closes the channel
            assert np.array_equal(f.array, np.full(8, f.index, np.uint32)), f"{r.name}: corrupt"
            got.append((f.index, f.missed))
        return got

    async def main() -> list:
        tasks = [asyncio.create_task(consume(r)) for r in readers]
        await asyncio.sleep(0)  # every reader waiting before the first frame
        for w in writers:
            w.stdin.write("go\n")
            w.stdin.flush()
        return await asyncio.gather(*tasks)

    try:
        results = run(main(), 90)
    finally:
        for r in readers:
            r.close()
    for n, got in zip(chans, results):
        first = got[0][0]
        assert [i for i, _ in got] == list(range(first, frames)), f"{n}: not every frame in order"
        assert all(m == 0 for _, m in got[1:]), f"{n}: frames missed"
        assert first == 0, f"{n}: opened before the first frame, yet missed {first}"
    for w in writers:
        assert w.wait(timeout=30) == 0, w.stderr.read()


def test_waiting_on_silent_channels_costs_under_one_percent_cpu(name, procs):
    chans = names(name, 64)
    writers = [shmframe.Writer(n) for n in chans]  # alive and silent
    try:
        p = procs.start(IDLE, *chans)
        out, err = p.communicate(timeout=60)
    finally:
        for w in writers:
            w.close()
    assert p.returncode == 0, err
    m = json.loads(out)
    assert m["waiting"] == 64, m
    assert m["cpu"] < 0.01 * m["wall"], f"{m['cpu']:.4f} s of CPU in {m['wall']:.2f} s"


def test_killed_writer_ends_async_for_with_writer_gone_within_a_second(name, procs, loop):
    w = procs.start(WRITER, name, "3", "0.001", "8", "--hold")
    expect(w, "ready")
    r = shmframe.Reader(name, timeout=10)
    killed = []

    async def main() -> list:
        got = []
        with pytest.raises(shmframe.WriterGone) as e:
            async for f in r:
                got.append(f.index)
                if len(got) == 3:
                    w.kill()
                    w.wait(timeout=10)
                    killed.append(time.monotonic())
        assert not isinstance(e.value, shmframe.ChannelClosed)
        return [got, time.monotonic() - killed[0]]

    try:
        w.stdin.write("go\n")
        w.stdin.flush()
        got, after = run(main(), 30, loop)
    finally:
        r.close()
    assert got == [0, 1, 2]
    assert after < 1.0, f"WriterGone {after:.2f} s after the kill"
    # The dead writer's channel is taken over by a new writer, which removes it on close.
    shmframe.Writer(name).close()


async def _pinned(w: shmframe.Writer) -> bool:
    """True if a write to the 1-slot channel fails because its only slot is pinned."""
    try:
        w.write(np.zeros(4, np.uint8))
        return False
    except shmframe.Error as e:
        assert "pinned" in str(e), e
        return True


def test_cancelled_aview_and_aread_leave_nothing_pinned(name, loop):
    with shmframe.Writer(name, slots=1) as w, shmframe.Reader(name, timeout=5) as r:

        async def hold_view(entered: asyncio.Event) -> None:
            async with r.aview() as f:
                assert f.index >= 0
                entered.set()
                await asyncio.sleep(30)

        async def main() -> None:
            # 1. Cancelled while waiting (nothing published yet): wait_for and task.cancel.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r.aview().__aenter__(), 0.05)
            t = asyncio.create_task(r.aread())
            await asyncio.sleep(0.05)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            assert not await _pinned(w)  # frame 0 published: nothing was pinned

            # 2. Cancelled just as a frame arrives: the frame is neither consumed nor pinned.
            async with r.aview(timeout=1) as f:
                assert f.index == 0
            t = asyncio.create_task(r.aview().__aenter__())
            await asyncio.sleep(0.05)
            w.write(np.ones(4, np.uint8))  # frame 1
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            async with r.aview(timeout=1) as f:
                assert (f.index, f.missed) == (1, 0)
                assert await _pinned(w)  # the view pins the only slot...
            assert not await _pinned(w)  # ...until its block ends (frame 2)

            # 3. Cancelled inside the `async with` block: leaving it releases the pin.
            entered = asyncio.Event()
            t = asyncio.create_task(hold_view(entered))
            await asyncio.wait_for(entered.wait(), 5)
            assert await _pinned(w)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            assert not await _pinned(w)  # frame 3

            # A fresh view works and the reader is not left "awaited".
            async with r.aview(timeout=1) as f:
                assert f.index == 3
                assert np.array_equal(f.array, np.zeros(4, np.uint8))
            assert f.index == 3
            with pytest.raises(shmframe.Error, match="released"):
                f.array

        run(main(), 30, loop)
        gc.collect()
        assert not asyncio.run(_pinned(w))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is Python 3.11+")
def test_asyncio_timeout_around_aread_and_aview(name, loop):
    with shmframe.Writer(name, slots=1) as w, shmframe.Reader(name, timeout=5) as r:

        async def main() -> None:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await r.aread()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    async with r.aview():
                        pass
            w.write(np.arange(3, dtype=np.int16))
            f = await r.aread(timeout=1)
            assert f.index == 0 and f.array.tolist() == [0, 1, 2]
            assert not await _pinned(w)

        run(main(), 30, loop)


def test_aread_timeout_raises_timeout(name, loop):
    with shmframe.Writer(name) as w, shmframe.Reader(name, timeout=5) as r:

        async def main() -> None:
            with pytest.raises(shmframe.Timeout, match="within") as e:
                await r.aread(timeout=0.05)
            assert isinstance(e.value, TimeoutError)
            with pytest.raises(shmframe.Timeout):
                async with r.aview(timeout=0.05):
                    pass
            with pytest.raises(shmframe.Timeout):
                await r.aread(timeout=0)
            with pytest.raises(ValueError, match="timeout"):
                await r.aread(timeout=-1)
            w.write(np.arange(5))
            f = await r.aread(timeout=0)  # ready now: no waiting needed
            assert f.array.tolist() == [0, 1, 2, 3, 4]

        run(main(), 30, loop)


def test_async_for_ends_when_the_writer_closes_and_errors_match_the_blocking_api(name, loop):
    w = shmframe.Writer(name)
    r = shmframe.Reader(name, timeout=5)

    async def main() -> list:
        async def publish() -> None:
            for k in range(5):
                await asyncio.sleep(0.01)
                w.write(np.full((2, 3), k, np.uint8))
            w.close()

        p = asyncio.create_task(publish())
        got = [(f.index, int(f.array[0, 0])) async for f in r]
        await p
        with pytest.raises(shmframe.ChannelClosed):
            await r.aread(timeout=1)
        return got

    try:
        assert run(main(), 30, loop) == [(k, k) for k in range(5)]
    finally:
        r.close()
        w.close()


def test_fileno_and_one_waiter_per_reader(name, loop):
    with shmframe.Writer(name) as w:
        r = shmframe.Reader(name, timeout=5)
        fd = r.fileno()
        assert fd >= 0 and r.fileno() == fd
        os.fstat(fd)  # an open descriptor

        async def main() -> None:
            t = asyncio.create_task(r.aread())
            await asyncio.sleep(0.02)
            with pytest.raises(shmframe.Error, match="another task"):
                await r.aread(timeout=0.05)
            w.write(np.arange(2))
            assert (await asyncio.wait_for(t, 5)).array.tolist() == [0, 1]

        run(main(), 30, loop)
        r.close()
        with pytest.raises(ValueError, match="closed"):
            r.fileno()


# The preview server, with a real HTTP client.


def _jpeg(data: bytes):
    from PIL import Image

    im = Image.open(io.BytesIO(data))
    im.load()
    assert im.format == "JPEG"
    return im


def _near(px, want, tol=12) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(px, want))


def _check_bgr(im) -> None:
    assert im.size == (160, 120) and im.mode == "RGB"
    assert _near(im.getpixel((40, 60)), (30, 100, 200)), im.getpixel((40, 60))  # BGR -> RGB
    assert _near(im.getpixel((120, 60)), (255, 0, 0)), im.getpixel((120, 60))


def _get(port: int, path: str) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


def test_preview_server(name, procs):
    pytest.importorskip("PIL", reason="the preview server needs Pillow")
    bgr, grey = f"{name}-bgr", f"{name}-grey"
    w = procs.start(PREVIEW_WRITER, bgr, grey)
    expect(w, "ready")
    s = procs.start_argv(str(EXAMPLE), "--port", "0", "--host", "127.0.0.1")
    line = s.stdout.readline().strip()
    assert line.startswith("serving on http://127.0.0.1:"), line + s.stderr.read()
    port = int(line.rsplit(":", 1)[1].strip("/"))

    status, ctype, body = _get(port, "/")
    assert status == 200 and ctype.startswith("text/html")
    page = body.decode()
    for n in (bgr, grey):
        assert f'href="/stream/{n}"' in page and f'href="/snapshot/{n}.jpg"' in page

    status, ctype, body = _get(port, f"/snapshot/{bgr}.jpg")
    assert (status, ctype) == (200, "image/jpeg")
    _check_bgr(_jpeg(body))
    status, ctype, body = _get(port, f"/snapshot/{grey}.jpg")
    im = _jpeg(body)
    assert (status, im.size, im.mode) == (200, (80, 60), "L")
    assert abs(im.getpixel((40, 30)) - 77) <= 4
    assert _get(port, f"/snapshot/{PREFIX}missing.jpg")[0] == 404

    # Two streams of the same channel and one of another, read part by part.
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(3)]
    try:
        resps = []
        for c, n in zip(conns, (bgr, bgr, grey)):
            c.request("GET", f"/stream/{n}")
            resps.append(c.getresponse())
        for resp, n in zip(resps, (bgr, bgr, grey)):
            assert resp.status == 200
            ctype = resp.getheader("Content-Type")
            assert ctype.startswith("multipart/x-mixed-replace; boundary=")
            boundary = ctype.split("boundary=", 1)[1].encode()
            for _ in range(3):
                line = resp.readline()
                while line == b"\r\n":
                    line = resp.readline()
                assert line.strip() == b"--" + boundary
                headers = {}
                while True:
                    h = resp.readline().strip()
                    if not h:
                        break
                    k, v = h.decode().split(":", 1)
                    headers[k.lower()] = v.strip()
                assert headers["content-type"] == "image/jpeg"
                im = _jpeg(resp.read(int(headers["content-length"])))
                if n == bgr:
                    _check_bgr(im)
                else:
                    assert im.size == (80, 60) and abs(im.getpixel((10, 10)) - 77) <= 4
            resp.close()
    finally:
        for c in conns:
            c.close()

    s.send_signal(signal.SIGTERM)
    assert s.wait(timeout=30) == 0, s.stderr.read()
    w.stdin.close()  # the writer closes its channels
    assert w.wait(timeout=30) == 0, w.stderr.read()
