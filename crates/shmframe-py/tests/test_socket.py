"""Socket-served channels: `Writer(name, socket=PATH)` keeps the channel in anonymous memory and
hands it to each `Reader(socket=PATH)` that connects. Writers and readers run as separate
processes (tests/peer.py, fresh interpreters); each test keeps its socket in a temporary
directory of its own, removed at the end, and checks that nothing of its channel is named in
/dev/shm.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import shmframe
from conftest import HERE, PREFIX
from peer import Meta, pattern

# No test may hang: a stuck one fails after this many seconds (pytest-timeout).
pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def sock():
    """A socket path in a new temporary directory, removed (with anything left in it) after the
    test."""
    d = tempfile.mkdtemp(prefix=f"{PREFIX}sock-")
    yield os.path.join(d, "ch.sock")
    shutil.rmtree(d, ignore_errors=True)


def in_dev_shm(name: str) -> list:
    """Everything in /dev/shm whose name mentions channel `name`."""
    return sorted(p for p in os.listdir("/dev/shm") if name in p)


def check_stream(frames: list, last: int) -> None:
    """[index, missed, intact, meta] records: intact, in order, `missed` accounts for every gap,
    the last one is `last`."""
    assert frames, "no frame received"
    prev = None
    for index, missed, ok, _meta in frames:
        assert ok, f"frame {index} corrupt"
        if prev is not None:
            assert index == prev + 1 + missed, frames
        prev = index
    assert prev == last, frames


def writer(child, name: str, sock: str, frames: int, *extra: str):
    """A writer process serving `name` on `sock` (peer.py write), once it is ready."""
    w = child("write", name, str(frames), "--socket", sock, *extra)
    assert w.line() == "ready", w.proc.stderr.read() if w.proc.poll() is not None else ""
    return w


@pytest.mark.parametrize("view", [False, True], ids=["read", "view"])
def test_writer_and_reader_processes_over_a_socket(name, sock, child, view):
    w = writer(child, name, sock, 50, "--meta", "--hold")
    st = os.lstat(sock)
    assert stat.S_ISSOCK(st.st_mode) and st.st_mode & 0o777 == 0o600
    r = child("drain", "-", "--socket", sock, *(["--view"] if view else []))
    assert r.line() == "waiting"
    assert r.line() == "ready"
    w.send("go")
    assert w.line() == "written"
    # Writer and reader both attached and the frames published: nothing is named in /dev/shm.
    assert in_dev_shm(name) == []
    w.proc.stdin.close()  # the writer closes its channel: the reader's loop ends
    code, out, err = r.finish()
    assert code == 0, err
    got = json.loads(out)
    assert (got["name"], got["socket"], got["view"]) == (name, sock, view)
    assert got["readonly"], "zero-copy arrays are read-only"
    check_stream(got["frames"], 49)
    for index, _missed, _ok, meta in got["frames"]:
        assert meta == [index, index / 2, [index, index + 1, index + 2]]
    assert w.proc.wait(timeout=30) == 0
    assert not os.path.lexists(sock), "the writer removes its socket when it closes"
    assert in_dev_shm(name) == []


def test_reader_in_this_process_views_and_copies_metadata_included(name, sock, child):
    w = writer(child, name, sock, 3, "--meta", "--hold")
    with shmframe.Reader(socket=Path(sock), timeout=10) as r:  # an os.PathLike
        assert (r.name, r.socket) == (name, sock)
        assert r.writer_alive and r.writer_pid == w.proc.pid
        assert [f[0] for f in r.meta_type._fields_] == ["index", "scale", "tag"]
        w.send("go")
        with r.view(timeout=10) as v:
            assert v.index == 0 and not v.array.flags.writeable
            assert np.array_equal(v.array, pattern(0))
            assert (v.meta.index, v.meta.scale, list(v.meta.tag)) == (0, 0.0, [0, 1, 2])
        f = r.read(timeout=10)
        assert f.index == 1 and np.array_equal(f.array, pattern(1)) and f.array.flags.writeable
        assert (f.meta.index, f.meta.scale, list(f.meta.tag)) == (1, 0.5, [1, 2, 3])
        assert in_dev_shm(name) == []
        assert w.line() == "written"
        w.proc.stdin.close()
        assert [f.index for f in r] == [2]  # then the writer's close ends the iteration
        assert "via" in repr(r)
    assert r.socket == sock and r.closed
    assert w.proc.wait(timeout=30) == 0


def test_structured_dtype_metadata_over_a_socket(name, sock):
    md = np.dtype([("count", np.uint32), ("exposure", np.float64), ("roi", np.int16, (4,))])
    with shmframe.Writer(name, socket=sock, meta=md) as w:
        assert w.socket == sock and f"on {sock!r}" in repr(w)
        assert w.refused_peers() == []
        code = (
            "import json, shmframe\n"
            f"with shmframe.Reader(socket={sock!r}, timeout=10) as r:\n"
            "    print('ready', flush=True)\n"
            "    f = r.read(timeout=10)\n"
            "    m = f.meta\n"
            "    print(json.dumps([f.array.tolist(), m.count, m.exposure, list(m.roi)]))\n"
        )
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
            w.write(np.arange(6, dtype=np.int32).reshape(2, 3), meta={"count": 7, "exposure": 0.25,
                                                                      "roi": [1, 2, 3, 4]})
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        assert p.returncode == 0, err
        assert json.loads(out) == [[[0, 1, 2], [3, 4, 5]], 7, 0.25, [1, 2, 3, 4]]
        assert in_dev_shm(name) == []


def test_reader_started_before_the_writer_waits_for_the_socket(name, sock, child):
    r = child("read", "-", "5", "--socket", sock, "--timeout", "30")
    time.sleep(0.5)  # let it start waiting (nothing is asserted about time)
    assert r.proc.poll() is None, r.proc.stderr.read()
    w = writer(child, name, sock, 5, "--hold")
    assert r.line() == "ready"
    w.send("go")
    code, out, err = r.finish()
    assert code == 0, err
    got = json.loads(out)
    assert [g["index"] for g in got] == [0, 1, 2, 3, 4] and all(g["ok"] for g in got)
    w.proc.stdin.close()
    assert w.proc.wait(timeout=30) == 0


def test_missing_socket_is_a_clear_error_naming_the_path(sock):
    with pytest.raises(shmframe.ChannelNotFound, match="no such socket") as e:
        shmframe.Reader(socket=sock, timeout=0)
    assert isinstance(e.value, FileNotFoundError) and sock in str(e.value)
    with pytest.raises(shmframe.ChannelNotFound, match="no writer served") as e:
        shmframe.Reader(socket=sock, timeout=0.2)
    assert sock in str(e.value)
    # A directory that does not exist is waited on (it may be created later), then reported.
    missing = os.path.join(sock + ".d", "ch.sock")
    with pytest.raises(shmframe.ChannelNotFound, match="no writer served") as e:
        shmframe.Reader(socket=missing, timeout=0.2)
    assert missing in str(e.value)


def test_reader_arguments(sock):
    with pytest.raises(TypeError, match="not both"):
        shmframe.Reader("camera0", socket=sock, timeout=0)
    with pytest.raises(TypeError, match="needs a channel name"):
        shmframe.Reader(timeout=0)
    with pytest.raises(ValueError, match="timeout"):
        shmframe.Reader(socket=sock, timeout=-1)


@pytest.mark.parametrize("mode", ["read", "aread"])
def test_kill_9_of_the_writer_is_writer_gone_and_the_next_writer_replaces_the_stale_socket(
    name, sock, child, mode
):
    w = writer(child, name, sock, 3, "--hold")
    r = shmframe.Reader(socket=sock, timeout=10)
    w.send("go")
    assert w.line() == "written"
    assert [r.read(timeout=10).index for _ in range(3)] == [0, 1, 2]
    w.proc.send_signal(signal.SIGKILL)
    w.proc.wait(timeout=10)
    # The reader learns of the death instead of waiting for frames that never come.
    with pytest.raises(shmframe.WriterGone, match="is gone") as e:
        if mode == "read":
            r.read(timeout=30)
        else:
            asyncio.run(asyncio.wait_for(r.aread(timeout=30), 60))
    assert not isinstance(e.value, shmframe.ChannelClosed)
    assert not r.writer_alive
    # The dead writer left its socket file behind (and nothing in /dev/shm).
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    assert in_dev_shm(name) == []
    with pytest.raises(shmframe.ChannelNotFound, match="stale") as e2:
        shmframe.Reader(socket=sock, timeout=0)
    assert sock in str(e2.value)
    # The next writer on the same path replaces the stale socket; the same reader resumes with
    # its frames, and new readers connect.
    with shmframe.Writer(name, socket=sock) as w2, shmframe.Reader(socket=sock, timeout=0) as r2:
        w2.write(np.arange(4))
        for reader in (r, r2):
            f = reader.read(timeout=10)
            assert f.index == 0 and f.array.tolist() == [0, 1, 2, 3]
        assert in_dev_shm(name) == []
    r.close()
    assert not os.path.lexists(sock)


def test_asyncio_reader_over_a_socket(name, sock, child):
    w = writer(child, name, sock, 20, "--meta", "--hold")

    async def main() -> list:
        with shmframe.Reader(socket=sock, timeout=10) as r:
            w.send("go")
            async with r.aview(timeout=10) as v:
                assert not v.array.flags.writeable
                first = (v.index, v.missed, bool(np.array_equal(v.array, pattern(v.index))), None)
            assert w.line() == "written"
            w.proc.stdin.close()
            rest = [(f.index, f.missed, bool(np.array_equal(f.array, pattern(f.index))), None)
                    async for f in r]
        return [first, *rest]

    got = asyncio.run(asyncio.wait_for(main(), 60))
    check_stream(got, 19)
    assert w.proc.wait(timeout=30) == 0


def test_keep_with_socket_is_a_clear_error(name, sock):
    with pytest.raises(ValueError, match="keep") as e:
        shmframe.Writer(name, socket=sock, keep=True)
    assert "socket" in str(e.value)
    assert not os.path.lexists(sock)
    assert in_dev_shm(name) == []


def test_a_second_writer_on_a_live_socket_is_busy_naming_the_pid(name, sock, child):
    w = writer(child, name, sock, 1, "--hold")
    with pytest.raises(shmframe.ChannelBusy, match="live writer") as e:
        shmframe.Writer(f"{name}-2", socket=sock)
    assert f"pid {w.proc.pid}" in str(e.value) and sock in str(e.value)
    assert in_dev_shm(f"{name}-2") == []
    # The first writer still serves its readers.
    with shmframe.Reader(socket=sock, timeout=10) as r:
        w.send("go")
        assert r.read(timeout=10).index == 0
        w.proc.stdin.close()
        assert w.proc.wait(timeout=30) == 0


def test_something_else_at_the_socket_path_is_left_alone(name, sock):
    with open(sock, "w") as f:
        f.write("keep me")
    with pytest.raises(shmframe.LayoutMismatch, match="not a socket"):
        shmframe.Writer(name, socket=sock)
    with open(sock) as f:
        assert f.read() == "keep me"
    missing_dir = os.path.join(sock + ".d", "ch.sock")
    with pytest.raises(shmframe.Error, match="directory exists"):
        shmframe.Writer(name, socket=missing_dir)
    assert in_dev_shm(name) == []


def test_ctrl_c_interrupts_waiting_for_a_socket(sock):
    code = (
        "import shmframe\nprint('ready', flush=True)\n"
        f"shmframe.Reader(socket={sock!r})\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # let it enter the wait (nothing is asserted about time)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert "KeyboardInterrupt" in err and p.returncode != 0
    assert "_Reader(name, timeout, socket)" in err  # raised out of the blocked connect


AS_NOBODY = "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as another user")
def test_socket_mode_keeps_other_users_out(name, sock):
    os.chmod(os.path.dirname(sock), 0o755)
    code = (
        "import os, shmframe\n" + AS_NOBODY +
        f"try:\n    shmframe.Reader(socket={sock!r}, timeout=0)\n"
        "except PermissionError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    with shmframe.Writer(name, socket=sock, mode=0o600) as w:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=30, cwd=str(HERE))
        assert out.stdout.startswith("PermissionDenied no permission to connect"), out.stderr
        assert sock in out.stdout
        assert w.refused_peers() == []  # the kernel turned it away: the writer never saw it


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as another user")
def test_writer_refuses_peers_its_mode_does_not_admit(name, sock):
    # A writer running as nobody (mode 0o600); this process (root) may connect to any socket,
    # but the writer checks the peer's credentials against the mode and refuses root.
    os.chown(os.path.dirname(sock), 65534, 65534)
    code = (
        "import json, os, sys, shmframe\n" + AS_NOBODY +
        f"with shmframe.Writer({name!r}, socket={sock!r}, mode=0o600) as w:\n"
        "    print('ready', flush=True)\n"
        "    sys.stdin.readline()\n"
        "    print(json.dumps(w.refused_peers()), flush=True)\n"
        "    print(json.dumps(w.refused_peers()), flush=True)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=str(HERE))
    try:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
        with pytest.raises(shmframe.PermissionDenied, match="refused this process") as e:
            shmframe.Reader(socket=sock, timeout=0)
        assert sock in str(e.value) and "uid 0" in str(e.value)
        out, err = p.communicate("report\n", timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    first, second = (json.loads(line) for line in out.splitlines())
    assert len(first) == 1
    pid, uid, gid, reason = first[0]
    assert (pid, uid, gid) == (os.getpid(), 0, os.getgid())
    assert reason in str(e.value)
    assert second == []  # each refusal is reported once
    assert in_dev_shm(name) == []

