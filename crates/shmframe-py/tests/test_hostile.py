"""Hostile conditions for the Python package: signals during every wait, close() from another
thread, extreme numbers as arguments, and entries under the channel's name that are not
channels. Waits run in fresh interpreters (subprocess), so a bug hangs a child, not the suite."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import shmframe

#: How soon a child must exit after SIGINT/SIGTERM, or close() must return. Blocking calls
#: check every 50 ms; the bound leaves room for a loaded machine (no speed is measured).
PROMPT = 3.0

#: A child that installs a SIGTERM handler raising SystemExit(143), says `ready`, and then runs
#: one wait given as a Python statement; KeyboardInterrupt exits 130.
CHILD = """
import signal, sys, shmframe
signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
name = sys.argv[1]
try:
    {setup}
    print("ready", flush=True)
    {wait}
    print("returned", flush=True)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(130)
"""

WAITS = {
    # Waiting for the channel to appear: forever, a long timeout, and a timeout beyond any clock.
    "open-forever": ("pass", "shmframe.Reader(name + '-absent')"),
    "open-timeout": ("pass", "shmframe.Reader(name + '-absent', timeout=600)"),
    "open-huge-timeout": ("pass", "shmframe.Reader(name + '-absent', timeout=9.3e18)"),
    # Waiting for a frame from a live writer that publishes nothing.
    "read": ("r = shmframe.Reader(name, timeout=10)", "r.read()"),
    "read-huge-timeout": ("r = shmframe.Reader(name, timeout=10)", "r.read(timeout=1e19)"),
    "view": ("r = shmframe.Reader(name, timeout=10)", "r.view(timeout=600)"),
    "iteration": ("r = shmframe.Reader(name, timeout=10)", "next(iter(r))"),
}


def start_child(setup: str, wait: str, name: str) -> subprocess.Popen:
    code = CHILD.format(setup=setup, wait=wait)
    p = subprocess.Popen([sys.executable, "-c", code, name], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if line != "ready":
        p.kill()
        out, err = p.communicate(timeout=30)
        pytest.fail(f"child not ready ({line!r}): {out} {err}")
    return p


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("wait", list(WAITS))
def test_signals_end_every_wait_promptly(name, wait, sig):
    setup, stmt = WAITS[wait]
    with shmframe.Writer(name):
        p = start_child(setup, stmt, name)
        try:
            time.sleep(0.3)  # let it enter the wait (not a timing assertion)
            p.send_signal(sig)
            out, err = p.communicate(timeout=PROMPT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=30)
            pytest.fail(f"{wait}: still waiting {PROMPT} s after {sig!r}: {err}")
    assert "returned" not in out
    if sig == signal.SIGINT:
        assert p.returncode == 130 and "KeyboardInterrupt" in out, (p.returncode, out, err)
    else:
        assert p.returncode == 143, (p.returncode, out, err)


CLOSE_CHILD = """
import json, sys, threading, time, shmframe
name, how = sys.argv[1], sys.argv[2]
w = shmframe.Writer(name)
r = shmframe.Reader(name, timeout=10)
got = {}
def consume():
    try:
        if how == "read":
            r.read()
        elif how == "view":
            r.view(timeout=None)
        else:
            for _ in r:
                pass
        got["returned"] = True
    except BaseException as e:
        got["error"] = f"{type(e).__name__}: {e}"
t = threading.Thread(target=consume, daemon=True)
t.start()
time.sleep(0.3)  # the thread is blocked in its wait
t0 = time.monotonic()
r.close()
took = time.monotonic() - t0
t.join(30)
print(json.dumps({"close_s": took, "alive": t.is_alive(), **got}), flush=True)
w.close()
"""


@pytest.mark.parametrize("how", ["read", "view", "iteration"])
def test_close_from_another_thread_ends_a_blocked_read(name, how):
    p = subprocess.Popen([sys.executable, "-c", CLOSE_CHILD, name, how], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=30)
        pytest.fail(f"close() did not end the blocked {how}: {out} {err}")
    finally:
        if os.path.exists(f"/dev/shm/shmframe.{name}"):
            os.unlink(f"/dev/shm/shmframe.{name}")
    assert p.returncode == 0, err
    got = json.loads(out)
    assert got["close_s"] < PROMPT and not got["alive"], got
    assert got.get("error", "").startswith("ValueError") and "closed" in got["error"], got


#: Numbers at the edges of float and int, as a timeout.
TIMEOUTS = [0, 0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 1e-300, 5e-324, 1e-9, 1e19,
            9.3e18, 2**64 - 1, 2**64, 2**1000, 1e308, -1, -1e-300, -1e308, True, False]


@pytest.mark.parametrize("timeout", TIMEOUTS, ids=repr)
def test_extreme_timeouts_are_refused_or_work(name, timeout):
    """Every call that takes a timeout, on a channel with a frame ready (so that no value
    waits): a result, or a ValueError naming the timeout; never a panic."""
    too_big = isinstance(timeout, int) and timeout > 1e308  # no float: OverflowError
    refused = too_big or math.isnan(timeout) or timeout < 0
    with shmframe.Writer(name) as w:
        w.write(np.arange(3))
        try:
            r = shmframe.Reader(name, timeout=timeout)
        except (ValueError, OverflowError) as e:
            assert refused, e
            assert isinstance(e, OverflowError) if too_big else "timeout" in str(e), e
            return
        assert not refused
        with r:
            assert r.read(timeout=timeout).array.tolist() == [0, 1, 2]
            w.write(np.arange(4))
            with r.view(timeout=timeout) as f:
                assert f.array.tolist() == [0, 1, 2, 3]
    if timeout <= 1e-9:
        with pytest.raises(shmframe.ChannelNotFound):
            shmframe.Reader(name, timeout=timeout)


@pytest.mark.parametrize("timeout", ["1", None, b"1", [1], 1j], ids=repr)
def test_timeouts_of_other_types_are_type_errors(name, timeout):
    with shmframe.Writer(name):
        if timeout is None:
            shmframe.Reader(name, timeout=timeout).close()
            return
        with pytest.raises(TypeError):
            shmframe.Reader(name, timeout=timeout)


def no_panic(call) -> BaseException:
    """Runs `call`, which must raise an ordinary exception (PyO3's PanicException derives from
    BaseException only), and returns it."""
    try:
        call()
    except Exception as e:
        return e
    except BaseException as e:  # a Rust panic
        pytest.fail(f"{type(e).__name__}: {e}")
    pytest.fail("no error")


@pytest.mark.parametrize("slots", [0, -1, 65, 2**32, 2**64, -(2**64), 3.5, math.nan])
def test_extreme_slot_counts(name, slots):
    e = no_panic(lambda: shmframe.Writer(name, slots=slots))
    assert isinstance(e, (ValueError, OverflowError, TypeError)), e


@pytest.mark.parametrize("mode", [-1, 2**32, 2**64, 0o7777, 0o400, 0o1000])
def test_extreme_modes(name, mode):
    e = no_panic(lambda: shmframe.Writer(name, mode=mode))
    assert isinstance(e, (ValueError, OverflowError)), e


@pytest.mark.parametrize("shape", [(2**62, 2**62), (2**63,), (2**64,), (-1,), (0, 2**63),
                                   (2**31, 2**31, 2**31), (1,) * 9, (2**40,)], ids=repr)
def test_extreme_loan_shapes(name, shape):
    with shmframe.Writer(name) as w:
        e = no_panic(lambda: w.loan(shape, np.uint8).__enter__())
        assert isinstance(e, (ValueError, OverflowError, shmframe.Error)), e
        w.write(np.arange(2))  # the writer is still usable


def test_fifo_under_the_name_is_refused_not_waited_on(name):
    """A FIFO named like the channel: opening it would block until someone writes to it."""
    path = f"/dev/shm/shmframe.{name}"
    os.mkfifo(path)
    try:
        code = ("import sys, shmframe\n"
                "try:\n    shmframe.Reader(sys.argv[1], timeout=float(sys.argv[2]))\n"
                "except shmframe.LayoutMismatch as e:\n    print('LayoutMismatch', e)\n")
        for timeout in ["0", "600"]:
            try:
                out = subprocess.run([sys.executable, "-c", code, name, timeout],
                                     capture_output=True, text=True, timeout=20)
            except subprocess.TimeoutExpired:
                pytest.fail(f"Reader(timeout={timeout}) blocked on the FIFO")
            assert out.stdout.startswith("LayoutMismatch") and "FIFO" in out.stdout, out
    finally:
        os.unlink(path)
