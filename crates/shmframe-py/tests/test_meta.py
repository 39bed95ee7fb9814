"""Metadata: ctypes structures, structured dtypes and dicts in; a ctypes structure rebuilt from
the channel's schema out (the reader needs no shared source)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import shmframe


class MD(ctypes.Structure):
    """The article's metadata struct (shape, size, count), with the padding it really has."""

    _fields_ = [("shape", ctypes.c_int32 * 3), ("size", ctypes.c_int64), ("count", ctypes.c_int64)]


class Mixed(ctypes.Structure):
    _fields_ = [
        ("flag", ctypes.c_bool),
        ("x", ctypes.c_double),
        ("b", ctypes.c_uint8),
        ("grid", (ctypes.c_float * 3) * 2),
        ("n", ctypes.c_uint16),
    ]


def test_ctypes_round_trip_rebuilds_the_type(name):
    with shmframe.Writer(name, meta=MD) as w, shmframe.Reader(name, timeout=5) as r:
        w.write(np.zeros((2, 3), np.uint8), meta=MD((480, 640, 3), 921600, 41))
        f = r.read(5)
        assert type(f.meta).__name__ == "MD" and isinstance(f.meta, ctypes.Structure)
        assert list(f.meta.shape) == [480, 640, 3]
        assert (f.meta.size, f.meta.count) == (921600, 41)
        assert ctypes.sizeof(f.meta) == ctypes.sizeof(MD) == 32
        assert MD.size.offset == type(f.meta).size.offset == 16
        assert bytes(f.meta) == bytes(MD((480, 640, 3), 921600, 41))
        assert r.meta_type is type(f.meta)


def test_padding_arrays_and_every_field_type(name):
    v = Mixed(True, -2.5, 200, ((1, 2, 3), (4, 5, 6)), 65535)
    with shmframe.Writer(name, meta=Mixed) as w, shmframe.Reader(name, timeout=5) as r:
        w.write(np.zeros(1), meta=v)
        m = r.read(5).meta
        assert (m.flag, m.x, m.b, m.n) == (True, -2.5, 200, 65535)
        assert list(m.grid) == [1, 2, 3, 4, 5, 6]  # the schema stores element counts: flattened
        for f, _ in Mixed._fields_:
            assert getattr(type(m), f).offset == getattr(Mixed, f).offset
        assert ctypes.sizeof(type(m)) == ctypes.sizeof(Mixed)


def test_structured_dtype_and_dict(name):
    dt = np.dtype([("frame_id", "<u4"), ("exposure", "<f8"), ("roi", "<i2", (4,))], align=True)
    with shmframe.Writer(name, meta=dt) as w, shmframe.Reader(name, timeout=5) as r:
        assert w.meta_dtype == dt
        rec = np.zeros((), dt)
        rec["frame_id"], rec["exposure"], rec["roi"] = 7, 0.01, [1, 2, 3, 4]
        w.write(np.zeros(3), meta=rec)  # 0-d structured array
        w.write(np.zeros(3), meta=rec[()])  # structured scalar (np.void)
        w.write(np.zeros(3), meta={"frame_id": 9, "roi": [5, 6, 7, 8]})
        got = [r.read(5).meta for _ in range(3)]
        assert [(m.frame_id, m.exposure, list(m.roi)) for m in got] == [
            (7, 0.01, [1, 2, 3, 4]),
            (7, 0.01, [1, 2, 3, 4]),
            (9, 0.0, [5, 6, 7, 8]),
        ]
        w.write(np.zeros(3))  # metadata is optional per frame
        assert r.read(5).meta is None


def test_ctypes_value_for_a_dtype_channel_and_back(name):
    dt = np.dtype(MD)
    with shmframe.Writer(name, meta=dt) as w, shmframe.Reader(name, timeout=5) as r:
        w.write(np.zeros(1), meta=MD((1, 2, 3), 4, 5))
        m = r.read(5).meta
        w.write(np.zeros(1), meta=m)  # the rebuilt type is accepted too
        assert bytes(r.read(5).meta) == bytes(MD((1, 2, 3), 4, 5))


def test_metadata_errors(name):
    with shmframe.Writer(name, meta=MD) as w:
        with pytest.raises(ValueError, match="no field 'cnt'.*shape, size, count"):
            w.write(np.zeros(1), meta={"cnt": 1})
        with pytest.raises(TypeError, match="meta must be"):
            w.write(np.zeros(1), meta=42)
        with pytest.raises(ValueError, match="one record"):
            w.write(np.zeros(1), meta=np.zeros(2, np.dtype(MD)))
    with shmframe.Writer(name) as w:
        with pytest.raises(ValueError, match="declares no metadata"):
            w.write(np.zeros(1), meta=MD())


class Bits(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint32, 3)]


class Inner(ctypes.Structure):
    _fields_ = [("a", ctypes.c_int32)]


class Nested(ctypes.Structure):
    _fields_ = [("inner", Inner)]


class Chars(ctypes.Structure):
    _fields_ = [("s", ctypes.c_char * 8)]


@pytest.mark.parametrize("bad", [Bits, Nested, Chars, np.dtype("u1"), "not a type"])
def test_unsupported_metadata_types(name, bad):
    with pytest.raises(TypeError):
        shmframe.Writer(name, meta=bad)
