"""Zero-copy: reader views pinned while their block is open, writer loans filled in place, and
arrays that outlive their block never dangle."""

from __future__ import annotations

import ctypes
import gc
import time

import numpy as np
import pytest

import shmframe
from peer import pattern


def test_view_array_is_released_after_the_block(name):
    with shmframe.Writer(name) as w, shmframe.Reader(name, timeout=5) as r:
        w.write(np.arange(6, dtype=np.int16))
        with r.view(5) as v:
            assert v.array.tolist() == [0, 1, 2, 3, 4, 5]
            with pytest.raises(ValueError):
                v.array[0] = 1  # read-only
        with pytest.raises(shmframe.Error, match="released when its `with` block ended"):
            v.array
        assert v.index == 0 and "released" in repr(v)


def test_view_is_never_torn_while_its_block_is_open(name, child):
    w = child("write", name, "300")
    assert w.line() == "ready"
    with shmframe.Reader(name, timeout=10) as r:
        w.send("go")
        seen = 0
        while True:
            try:
                v = r.view(timeout=10)
            except shmframe.ChannelClosed:
                break
            with v:
                first = v.array.copy()
                assert np.array_equal(first, pattern(v.index))
                time.sleep(0.005)  # the writer laps the ring meanwhile, skipping this slot
                assert np.array_equal(v.array, first)
            seen += 1
    assert seen > 0
    assert w.finish()[0] == 0


def test_array_taken_out_of_a_view_owns_its_pin_and_mapping(name):
    w = shmframe.Writer(name, slots=1)
    r = shmframe.Reader(name, timeout=5)
    w.write(np.full((100, 100), 3, np.uint8))
    with r.view(5) as v:
        kept = v.array
    # The only slot is pinned by `kept`: the writer refuses to overwrite it.
    with pytest.raises(shmframe.Error, match="pinned by zero-copy readers"):
        w.write(np.full((100, 100), 4, np.uint8))
    assert int(kept.sum()) == 3 * 100 * 100
    del kept, v
    gc.collect()
    w.write(np.full((100, 100), 5, np.uint8))  # the pin went with the array
    assert r.read(5).array[0, 0] == 5
    w.write(np.full((100, 100), 6, np.uint8))
    with r.view(5) as v:
        kept = v.array
    w.close()  # the channel is removed from /dev/shm ...
    r.close()
    gc.collect()
    assert int(kept.sum()) == 6 * 100 * 100  # ... but the array's memory is still mapped


def test_frames_and_views_in_reference_cycles_are_collected(name):
    # A view kept in a cycle (here: its own metadata slot holds a list that holds it) must be
    # found by the garbage collector, or its slot would stay pinned for good.
    w = shmframe.Writer(name, slots=1)
    r = shmframe.Reader(name, timeout=5)
    try:
        w.write(np.full(16, 1, np.uint8))
        v = r.view(5)
        kept = v.array
        v.meta = [v, kept]  # view -> list -> view, and the array (which owns the pin)
        f = shmframe.Frame(kept.copy(), None, 0, 0, 0)
        f.meta = [f]
        del v, kept, f
        with pytest.raises(shmframe.Error, match="pinned by zero-copy readers"):
            w.write(np.full(16, 2, np.uint8))
        gc.collect()
        w.write(np.full(16, 3, np.uint8))  # the only slot is free again
        assert r.read(5).array[0] == 3
    finally:
        r.close()
        w.close()


def test_loan_publishes_on_exit_with_metadata_set_inside(name):
    class M(ctypes.Structure):
        _fields_ = [("count", ctypes.c_int64), ("gain", ctypes.c_float)]

    m = M(0, 0.0)
    with shmframe.Writer(name, meta=M) as w, shmframe.Reader(name, timeout=5) as r:
        loan = w.loan((480, 640, 3), np.uint8, meta=m)
        with loan as buf:
            assert buf.shape == (480, 640, 3) and buf.dtype == np.uint8
            assert buf.flags.writeable and buf.flags.c_contiguous
            buf[:] = 17
            buf[0, 0] = (1, 2, 3)
            m.count, m.gain = 41, 1.5  # read when the block ends
        assert loan.index == 0
        f = r.read(5)
        assert f.array[0, 0].tolist() == [1, 2, 3] and int(f.array[1:].sum()) == 17 * 479 * 640 * 3
        assert (f.meta.count, f.meta.gain) == (41, 1.5)
        # Once published the array is read-only, and cannot be made writable again.
        assert not buf.flags.writeable
        with pytest.raises(ValueError):
            buf.flags.writeable = True


def test_exception_in_loan_discards_the_frame(name):
    with shmframe.Writer(name) as w, shmframe.Reader(name, timeout=5) as r:
        with pytest.raises(RuntimeError, match="camera failed"):
            with w.loan((4,), "float32") as buf:
                buf[:] = 1
                raise RuntimeError("camera failed")
        with pytest.raises(shmframe.Timeout):
            r.read(timeout=0.1)
        with w.loan((4,), "float32") as buf:
            buf[:] = 2
        f = r.read(5)
        assert f.array.tolist() == [2, 2, 2, 2] and f.missed == 0


def test_loan_rules(name):
    with shmframe.Writer(name) as w:
        loan = w.loan((2, 2), "uint16")
        with loan as buf:
            with pytest.raises(ValueError, match="already open"):
                w.loan((1,), "uint8").__enter__()
            with pytest.raises(ValueError, match="is still open: publish or discard it"):
                w.write(np.zeros(1))
        with pytest.raises(shmframe.Error, match="already used"):
            loan.__enter__()
        with pytest.raises(TypeError, match="not supported"):
            w.loan((2,), np.complex128).__enter__()
        kept = buf
    w.close()
    gc.collect()
    assert kept.shape == (2, 2)  # the writer is gone; the array still points at mapped memory
    assert kept.sum() >= 0
