"""Shared by seed_write.py and seed_read.py: the metadata struct and the test pattern.

The metadata object holds, in native byte order: int32 shape_0, shape_1, shape_2, four bytes of
padding, int64 size, int64 count (32 bytes). The pattern of frame `count` with shape (h, w, c),
at flat index i, is (i + i // 1021 + 7 * count + h + 3 * w + 5 * c) mod 256; the Rust tests
compute the same function.
"""

import struct

import numpy as np

MD = struct.Struct("=iii4xqq")
MD_SIZE = MD.size
assert MD_SIZE == 32


def pack_md(shape, size, count):
    return MD.pack(shape[0], shape[1], shape[2], size, count)


def unpack_md(buf):
    h, w, c, size, count = MD.unpack(bytes(buf[:MD_SIZE]))
    return (h, w, c), size, count


_bases = {}


def _base(shape):
    key = tuple(shape)
    if key not in _bases:
        n = shape[0] * shape[1] * shape[2]
        i = np.arange(n, dtype=np.uint64)
        _bases[key] = ((i + i // 1021) % 256).astype(np.uint8)
    return _bases[key]


def pattern(shape, count):
    h, w, c = shape
    k = (7 * count + h + 3 * w + 5 * c) % 256
    return (_base(shape) + np.uint8(k)).reshape(shape)


def parse_shape(s):
    dims = tuple(int(x) for x in s.lower().split("x"))
    if len(dims) != 3 or min(dims) < 1:
        raise SystemExit(f"bad shape {s!r}: give HxWxC, e.g. 480x640x3")
    return dims
