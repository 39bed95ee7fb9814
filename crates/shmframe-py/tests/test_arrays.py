"""Arrays of every dtype and rank round-trip exactly; bad arrays get clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import shmframe

DTYPES = [
    "bool", "uint8", "int8", "uint16", "int16", "uint32", "int32",
    "uint64", "int64", "float32", "float64",
]
SHAPES = [(), (7,), (3, 5), (4, 6, 3), (2, 3, 4, 5)]


def sample(dtype: str, shape: tuple) -> np.ndarray:
    n = int(np.prod(shape))
    rng = np.random.default_rng(n)
    if dtype == "bool":
        return rng.integers(0, 2, n).astype(bool).reshape(shape)
    if dtype.startswith("float"):
        return rng.standard_normal(n).astype(dtype).reshape(shape)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True).reshape(shape)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_copy_and_view(name, dtype, shape):
    a = sample(dtype, shape)
    with shmframe.Writer(name) as w, shmframe.Reader(name, timeout=5) as r:
        assert w.write(a) == 0
        f = r.read(timeout=5)
        assert f.array.dtype == a.dtype and f.array.shape == a.shape
        assert np.array_equal(f.array, a)
        assert f.index == 0 and f.missed == 0 and f.meta is None
        assert f.array.flags.writeable and f.array.flags.c_contiguous
        w.write(a)
        with r.view(timeout=5) as v:
            assert v.index == 1
            assert v.array.dtype == a.dtype and v.array.shape == a.shape
            assert np.array_equal(v.array, a)
            assert not v.array.flags.writeable


def test_non_contiguous_and_foreign_byte_order(name):
    base = np.arange(60, dtype=np.int32).reshape(6, 10)
    with shmframe.Writer(name) as w, shmframe.Reader(name, timeout=5) as r:
        w.write(base[::2, 1::3])
        assert np.array_equal(r.read(5).array, base[::2, 1::3])
        w.write(base.T)
        assert np.array_equal(r.read(5).array, base.T)
        big = base.astype(">f8")
        w.write(big)
        got = r.read(5).array
        assert got.dtype == np.float64 and np.array_equal(got, big)
        w.write([[1, 2], [3, 4]])  # anything numpy.asarray takes
        assert r.read(5).array.tolist() == [[1, 2], [3, 4]]


def test_zero_sized_and_eight_dims(name):
    with shmframe.Writer(name) as w, shmframe.Reader(name, timeout=5) as r:
        w.write(np.zeros((0, 5), np.uint8))
        assert r.read(5).array.shape == (0, 5)
        a = np.arange(2**8, dtype=np.uint16).reshape((2,) * 8)
        w.write(a)
        assert np.array_equal(r.read(5).array, a)


def test_frames_grow_and_shrink(name):
    with shmframe.Writer(name) as w, shmframe.Reader(name, timeout=5) as r:
        for shape in [(4, 4), (480, 640, 3), (2,), (1080, 1920, 3)]:
            a = np.full(shape, 7, np.uint8)
            w.write(a)
            assert np.array_equal(r.read(5).array, a)


@pytest.mark.parametrize(
    "bad", [np.zeros(3, np.complex64), np.array(["a"]), np.array([object()]), np.zeros(2, "f2")]
)
def test_unsupported_dtype_is_a_type_error(name, bad):
    with shmframe.Writer(name) as w:
        with pytest.raises(TypeError, match="cannot be sent"):
            w.write(bad)


def test_too_many_dims_is_a_value_error(name):
    with shmframe.Writer(name) as w:
        with pytest.raises(ValueError, match="dimensions"):
            w.write(np.zeros((1,) * 9, np.uint8))


def test_missed_frames_are_counted_and_latest(name):
    with shmframe.Writer(name, slots=4) as w, shmframe.Reader(name, timeout=5) as r:
        assert r.latest() is None
        for k in range(10):
            w.write(np.array([k], np.int64))
        f = r.read(5)  # the ring holds the last 4; the oldest of them comes first
        assert (f.index, f.array[0], f.missed) == (6, 6, 0)
        last = r.latest()
        assert last is not None and (last.index, last.array[0], last.missed) == (9, 9, 2)
        assert r.latest() is None
        r.set_latest_only(True)
        for k in range(10, 15):
            w.write(np.array([k], np.int64))
        f = r.read(5)
        assert (f.index, f.missed) == (14, 4)


def test_timeout_and_closed_objects(name):
    with shmframe.Writer(name) as w:
        r = shmframe.Reader(name, timeout=5)
        with pytest.raises(shmframe.Timeout, match="no frame"):
            r.read(timeout=0.1)
        with pytest.raises(TimeoutError):  # Timeout is also the builtin TimeoutError
            r.read(timeout=0)
        with pytest.raises(ValueError, match="timeout"):
            r.read(timeout=-1)
        r.close()
        r.close()
        with pytest.raises(ValueError, match="closed"):
            r.read(1)
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write(np.zeros(1))


def test_bad_names_are_value_errors():
    for bad in ["", "a/b", "-x", "x" * 300]:
        with pytest.raises(ValueError, match="channel name"):
            shmframe.Writer(bad)
        with pytest.raises(ValueError, match="channel name"):
            shmframe.Reader(bad, timeout=0)


@pytest.mark.parametrize("nbytes", [64, 64 * 1024, 3 * 1024 * 1024])
def test_frames_are_plain_values(name, nbytes):
    # Small frames are copied without letting go of the interpreter, large ones with: both
    # must give the same kind of Frame, one that can be changed, printed and pickled.
    import pickle

    sent = np.arange(nbytes, dtype=np.uint8) * 7
    with shmframe.Writer(name) as w, shmframe.Reader(name, timeout=5) as r:
        w.write(sent)
        w.write(sent[::-1].copy())
        f = r.read(5)
        assert isinstance(f, shmframe.Frame) and f.meta is None and f.missed == 0
        np.testing.assert_array_equal(f.array, sent)
        assert repr(f) == f"<shmframe.Frame index=0 shape=({nbytes},) dtype=uint8 missed=0>"
        back = pickle.loads(pickle.dumps(f))
        np.testing.assert_array_equal(back.array, sent)
        assert (back.index, back.timestamp_ns, back.missed) == (0, f.timestamp_ns, 0)
        f.missed = 5
        assert f.missed == 5
        with r.view(5) as v:
            assert isinstance(v, shmframe.FrameView) and v.index == 1
            assert repr(v) == f"<shmframe.FrameView index=1 shape=({nbytes},)>"
            np.testing.assert_array_equal(v.array, sent[::-1])
        assert repr(v) == "<shmframe.FrameView index=1 released>"
