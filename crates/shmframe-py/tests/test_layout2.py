"""Python sides of layout 2's reliability fixes: a loan's slices cannot touch a published frame,
and a truncated channel is an error, not a SIGBUS."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import shmframe


def test_loan_slices_cannot_change_a_published_frame(name):
    """A slice of a loan kept past publish used to write into the published slot (a reader's
    view changed from 16 to 2048). Now the loan's own mapping is replaced by private memory at
    publish: the stray write lands there."""
    with shmframe.Writer(name) as w, shmframe.Reader(name, timeout=5) as r:
        with w.loan((4, 4), np.uint8) as buf:
            buf[:] = 1
            sl = buf[1:3]
        with r.view(timeout=5) as f:
            assert int(f.array.sum()) == 16
            sl[:] = 255
            assert int(f.array.sum()) == 16
        w.write(np.full((4, 4), 2, np.uint8))
        assert int(r.read(timeout=5).array.sum()) == 32


TRUNCATE = """
import os, sys, numpy as np, shmframe
name = sys.argv[1]
w = shmframe.Writer(name)
r = shmframe.Reader(name, timeout=5)
w.write(np.full((256, 256, 3), 7, np.uint8))
assert int(r.read(timeout=5).array[0, 0, 0]) == 7
os.truncate(f"/dev/shm/shmframe.{name}", 4096)
errors = []
try:
    w.write(np.full((256, 256, 3), 8, np.uint8))
except shmframe.Error as e:
    errors.append(("writer", str(e)))
try:
    r.read(timeout=1)
except shmframe.Error as e:
    errors.append(("reader", str(e)))
# The writer re-created its channel: a new reader gets its frames.
w.write(np.full((256, 256, 3), 9, np.uint8))
r2 = shmframe.Reader(name, timeout=5)
w.write(np.full((256, 256, 3), 10, np.uint8))
got = int(r2.read(timeout=5).array[0, 0, 0])
print(errors, got, flush=True)
r.close(); r2.close(); w.close()
"""


def test_truncated_channel_is_an_error_not_sigbus(name):
    """Truncating the object killed the writer and the Python reader with SIGBUS (exit 135)."""
    p = subprocess.run([sys.executable, "-c", TRUNCATE, name], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr)
    out = p.stdout.strip()
    assert "truncated" in out, out
    assert out.endswith(" 10") or out.endswith(" 9"), out
