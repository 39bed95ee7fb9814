"""Shared fixtures: unique channel names, child processes, and the /dev/shm leftover check."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# The Ctrl-C tests send SIGINT to child processes. A suite started in the background of a
# non-interactive shell inherits SIGINT *ignored*, and a child inherits that across exec (Python
# then never raises KeyboardInterrupt). A handler, unlike "ignore", is reset to the default in
# every child: install Python's own.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

HERE = Path(__file__).resolve().parent
PREFIX = f"pyt-{os.getpid()}-"
_counter = itertools.count()


def shm_objects() -> list:
    """Objects this test run created (and did not remove) in /dev/shm."""
    return sorted(p for p in os.listdir("/dev/shm") if PREFIX in p)


@pytest.fixture(scope="session", autouse=True)
def no_leftovers():
    """Fails the run if any test left a shared-memory object behind."""
    yield
    left = shm_objects()
    for p in left:
        os.unlink(os.path.join("/dev/shm", p))
    assert not left, f"tests left objects in /dev/shm: {left}"


@pytest.fixture
def name():
    """A channel name unique to this test (the object is /dev/shm/shmframe.pyt-PID-N). The test
    fails if it leaves the channel or its pin table (shmframe-pins.pyt-PID-N.LINEAGE) behind."""
    n = f"{PREFIX}{next(_counter)}"
    yield n
    left = [p for p in os.listdir("/dev/shm") if p == f"shmframe.{n}" or p.startswith(f"shmframe-pins.{n}.")]
    for p in left:
        os.unlink(os.path.join("/dev/shm", p))
    assert not left, f"the test left objects of its channel {n} in /dev/shm: {left}"


class Child:
    """A Python child process running tests/peer.py (a fresh interpreter, not a fork)."""

    def __init__(self, *args: str, **kw) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "peer.py"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kw,
        )

    def line(self) -> str:
        """The child's next stdout line (it prints `ready` once it holds its channel)."""
        return self.proc.stdout.readline().strip()

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30) -> tuple:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


@pytest.fixture
def child():
    """Starts peer.py children; kills any still running when the test ends."""
    started = []

    def start(*args: str, **kw) -> Child:
        c = Child(*args, **kw)
        started.append(c)
        return c

    yield start
    for c in started:
        c.kill()
