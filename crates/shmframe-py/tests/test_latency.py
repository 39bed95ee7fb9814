"""`shmframe.prefer_low_latency()`: the calling thread's time slice, nothing else."""

from __future__ import annotations

import os
import platform
import re
import threading

import pytest

import shmframe


def test_prefer_low_latency_sets_a_short_slice_and_keeps_the_nice_value():
    kernel = tuple(int(x) for x in re.findall(r"\d+", platform.release())[:2])
    out: dict = {}

    def reader_thread() -> None:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, 4)
        try:
            out["slice"] = shmframe.prefer_low_latency()
        except shmframe.Error as e:
            out["error"] = str(e)
        out["nice"] = os.getpriority(os.PRIO_PROCESS, tid)

    t = threading.Thread(target=reader_thread)
    t.start()
    t.join()
    if kernel < (6, 12):
        assert "6.12" in out["error"] and out["nice"] == 4, out
        pytest.skip(f"kernel {platform.release()} has no per-thread time slices (the error said so)")
    assert out == {"slice": pytest.approx(0.0001), "nice": 4}
