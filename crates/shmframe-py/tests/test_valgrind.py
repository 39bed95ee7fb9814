"""The module under valgrind: a process that loads it, writes, reads and takes the clock runs to
the end (the library reads its clocks through libc; rustix's own vDSO lookup, which valgrind does
not map, crashed it at the first timestamp)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

SCRIPT = """
import sys
import numpy as np
import shmframe
name = sys.argv[1]
a = np.arange(48, dtype=np.uint16).reshape(4, 12)
with shmframe.Writer(name) as w, shmframe.Reader(name, timeout=60) as r:
    w.write(a)
    f = r.read(timeout=60)
    assert np.array_equal(f.array, a) and f.timestamp_ns <= shmframe.monotonic_ns()
    w.write(a + 1)
    with r.view(timeout=60) as v:
        assert np.array_equal(v.array, a + 1)
print("ok")
"""


def test_a_writer_and_a_reader_run_under_valgrind(name):
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        pytest.skip("valgrind is not installed (apt-get install valgrind)")
    # --tool=none: the question is whether the process survives valgrind's view of memory (the
    # vDSO among it), not the interpreter's own allocator reports.
    out = subprocess.run(
        [valgrind, "-q", "--tool=none", sys.executable, "-c", SCRIPT, name],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
