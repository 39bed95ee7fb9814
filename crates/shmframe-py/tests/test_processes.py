"""Writers and readers in separate processes (fresh interpreters started with subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import shmframe
from conftest import HERE
from peer import pattern


def check_stream(frames: list, last: int) -> None:
    """Received frames are intact, in order, and `missed` accounts for every gap."""
    assert frames, "no frame received"
    prev = None
    for f in frames:
        assert np.array_equal(f.array, pattern(f.index)), f"frame {f.index} corrupt"
        if prev is not None:
            assert f.index == prev + 1 + f.missed
        prev = f.index
    assert prev == last


def test_python_writer_process_to_reader(name, child):
    w = child("write", name, "200", "--meta")
    assert w.line() == "ready"
    with shmframe.Reader(name, timeout=10) as r:
        w.send("go")
        frames = list(r)  # ends when the writer closes the channel
    check_stream(frames, 199)
    for f in frames:
        assert (f.meta.index, f.meta.scale, list(f.meta.tag)) == (
            f.index, f.index / 2, [f.index, f.index + 1, f.index + 2]
        )
    assert w.finish()[0] == 0


def test_writer_to_reader_process(name, child):
    r = child("read", name, "5", "--timeout", "10")  # starts before the channel exists
    with shmframe.Writer(name, meta=__import__("peer").Meta, slots=8) as w:
        assert r.line() == "ready"
        from peer import Meta

        for k in range(5):
            w.write(pattern(k), meta=Meta(k, k / 2, (k, k + 1, k + 2)))
        code, out, err = r.finish()
    assert code == 0, err
    got = json.loads(out)
    assert [g["index"] for g in got] == [0, 1, 2, 3, 4]
    assert all(g["ok"] and g["dtype"] == "uint16" for g in got)
    assert got[3]["meta"] == [3, 1.5, [3, 4, 5]]


def test_killed_writer_is_writer_gone_and_a_new_writer_takes_over(name, child):
    w = child("write", name, "3", "--hold")
    assert w.line() == "ready"
    r = shmframe.Reader(name, timeout=10)
    w.send("go")
    assert w.line() == "written"
    assert [f.index for f in (r.read(5), r.read(5), r.read(5))] == [0, 1, 2]
    assert r.writer_alive
    w.proc.send_signal(signal.SIGKILL)
    w.proc.wait(timeout=10)
    with pytest.raises(shmframe.WriterGone, match="is gone") as e:
        r.read(timeout=10)
    assert not isinstance(e.value, shmframe.ChannelClosed)
    assert not r.writer_alive
    # The dead writer's object is still there; a new writer takes the name over (and removes
    # it on close), and the same reader resumes with the new writer's frames.
    with shmframe.Writer(name) as w2:
        w2.write(np.arange(4))
        f = r.read(timeout=10)
        assert f.index == 0 and f.array.tolist() == [0, 1, 2, 3]
    r.close()


def test_live_writer_holds_the_name(name, child):
    w = child("write", name, "0", "--hold")
    assert w.line() == "ready"
    with pytest.raises(shmframe.ChannelBusy, match="already has a live writer"):
        shmframe.Writer(name)
    w.send("go")  # the child writes nothing, then closes and removes the channel
    assert w.line() == "written"
    w.proc.stdin.close()
    assert w.proc.wait(timeout=30) == 0


def test_reader_times_out_waiting_for_the_channel(name):
    with pytest.raises(shmframe.ChannelNotFound, match="did not appear"):
        shmframe.Reader(name, timeout=0.2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        shmframe.Reader(name, timeout=0)


def test_ctrl_c_interrupts_a_blocked_read(name, child):
    with shmframe.Writer(name):
        b = child("block", name)
        assert b.line() == "ready"
        time.sleep(0.5)  # let it enter read() (no timing is asserted)
        b.proc.send_signal(signal.SIGINT)
        code, out, err = b.finish(timeout=5)
    assert "KeyboardInterrupt" in out
    assert "KeyboardInterrupt" in err and code != 0
    assert "r.read()" in err  # raised out of the blocked read, not before it


def test_ctrl_c_interrupts_waiting_for_a_channel(name):
    code = f"import shmframe\nprint('ready', flush=True)\nshmframe.Reader({name!r})\n"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=5)
    assert "KeyboardInterrupt" in err and p.returncode != 0
    assert "_Reader(name, timeout)" in err  # raised out of the blocked open


def test_foreign_object_is_a_layout_mismatch(name):
    path = f"/dev/shm/shmframe.{name}"
    with open(path, "wb") as f:
        f.write(b"definitely not a shmframe channel" * 200)
    try:
        with pytest.raises(shmframe.LayoutMismatch):
            shmframe.Reader(name, timeout=0)
    finally:
        os.unlink(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as another user")
def test_other_users_channel_is_permission_denied(name):
    code = (
        "import os, shmframe\n"
        "os.setgid(65534); os.setuid(65534)\n"
        f"try:\n    shmframe.Reader({name!r}, timeout=0)\n"
        "except PermissionError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    with shmframe.Writer(name, mode=0o600):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=30, cwd=str(HERE))
    assert out.stdout.startswith("PermissionDenied no permission to read"), out.stderr


def test_blocked_read_releases_the_gil(name):
    import threading

    got: dict = {}
    with shmframe.Writer(name) as w, shmframe.Reader(name, timeout=5) as r:

        def reader() -> None:
            try:
                got["frame"] = r.read(timeout=30)
            except shmframe.Error as e:
                got["error"] = e

        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.2)  # the reader thread is blocked in read(); this thread must still run
        w.write(np.array([42]))
        t.join(timeout=60)
    assert "error" not in got and got["frame"].array.tolist() == [42]


def test_mode_and_keep(name):
    with shmframe.Writer(name, mode=0o640, keep=True) as w:
        assert os.stat(f"/dev/shm/shmframe.{name}").st_mode & 0o777 == 0o640
        w.write(np.arange(3))
    try:
        # The channel outlives its writer: a reader opened later still reads the last frame.
        with shmframe.Reader(name, timeout=0) as r:
            assert r.latest().array.tolist() == [0, 1, 2]
            with pytest.raises(shmframe.ChannelClosed):
                r.read(timeout=1)
    finally:
        shmframe.remove(name)  # the channel and its pin table
    assert not os.path.exists(f"/dev/shm/shmframe.{name}")
    with pytest.raises(shmframe.ChannelNotFound, match=name):
        shmframe.remove(name)


@pytest.mark.parametrize("slots", [0, 65])
def test_bad_slot_counts(name, slots):
    with pytest.raises(ValueError, match="slots"):
        shmframe.Writer(name, slots=slots)
