"""The Python side of the C/C++ cross-language tests (scripts/test.d/65-c.sh).

    peer.py read NAME N GO     receive the test frames of peer.c (see there), check every byte
    peer.py write NAME N GO    publish the test frames, for peer.cpp
    peer.py video NAME N       receive examples/cpp/write.cpp's frames of the clip that
                               `peer.cpp make-video` made, check the pixels and the metadata
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

import numpy as np

import shmframe


class TestMeta(ctypes.Structure):
    _fields_ = [
        ("index", ctypes.c_uint32),
        ("pad", ctypes.c_int32),
        ("value", ctypes.c_double),
        ("tag", ctypes.c_uint8 * 4),
    ]


def test_frame(k: int) -> np.ndarray:
    if k % 2 == 0:
        return ((7 * k + np.arange(12 * 16 * 3)) % 251).astype(np.uint8).reshape(12, 16, 3)
    return (k + np.arange(5 * 7, dtype=np.float32) / 4).reshape(5, 7)


def check_frame(frame, k: int) -> None:
    want = test_frame(k)
    a = frame.array
    assert a.dtype == want.dtype and a.shape == want.shape, (k, a.dtype, a.shape)
    assert np.array_equal(a, want), f"frame {k}: pixels differ"
    m = frame.meta
    assert m is not None, f"frame {k}: no metadata"
    assert (m.index, m.value, bytes(m.tag)) == (k, k / 2, bytes([ord("s"), ord("f"), k, 0])), (
        k,
        m.index,
        m.value,
        bytes(m.tag),
    )


def touch(path: str) -> None:
    open(path, "a").close()


def read(name: str, n: int, go: str) -> None:
    got = 0
    with shmframe.Reader(name, timeout=30) as r:
        assert r.meta_type is not None and r.meta_type.__name__ == "TestMeta", r.meta_type
        while True:
            try:
                if got % 2 == 0:
                    with r.view(timeout=10) as f:
                        check_frame(f, f.index)
                        index, missed = f.index, f.missed
                else:
                    f = r.read(timeout=10)
                    check_frame(f, f.index)
                    index, missed = f.index, f.missed
            except shmframe.ChannelClosed:
                break
            assert (index, missed) == (got, 0), (got, index, missed)
            got += 1
            if got == 1:
                touch(go)
            if got == n:
                touch(go + ".done")  # the writer closes now (see peer.c)
    assert got == n, f"received {got} of {n} frames"
    print(f"peer.py read: {got} frames from C checked")


def wait_file(path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit(f"peer.py write: {path} did not appear within {timeout} s")
        time.sleep(0.01)


def write(name: str, n: int, go: str) -> None:
    with shmframe.Writer(name, slots=32, meta=TestMeta) as w:
        for k in range(n):
            if k == 1:
                wait_file(go, 30)
            meta = TestMeta(k, 0, k / 2, (ctypes.c_uint8 * 4)(ord("s"), ord("f"), k, 0))
            a = test_frame(k)
            if k % 3 == 0:
                with w.loan(a.shape, a.dtype, meta=meta) as buf:
                    buf[...] = a
            else:
                assert w.write(a, meta) == k
        wait_file(go + ".done", 30)
    print(f"peer.py write: {n} frames published")


def video_expected(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The clip of `peer.cpp make-video`: frame k's top half gray, its bottom half a colour (BGR)."""
    top = np.array([16 + 6 * k] * 3, np.float64)
    bottom = np.array([250 - 6 * k, 128, 16 + 6 * k], np.float64)
    return top, bottom


def video(name: str, n: int) -> None:
    got, last = 0, None
    worst = 0.0
    with shmframe.Reader(name, timeout=30) as r:
        for f in r:
            a = f.array
            assert a.dtype == np.uint8 and a.shape == (120, 160, 3), (a.dtype, a.shape)
            k = f.index
            top, bottom = video_expected(k)
            # Away from the edge between the halves, where the codec smears.
            for region, want in ((a[16:44, 16:144], top), (a[76:104, 16:144], bottom)):
                err = np.abs(region.reshape(-1, 3).astype(np.float64) - want).max()
                worst = max(worst, err)
                assert err <= 12, f"frame {k}: pixels off by {err} (want {want})"
            m = f.meta
            assert m is not None and (m.shape_0, m.shape_1, m.shape_2) == (120, 160, 3), m
            assert m.size == 120 * 160 * 3 and m.count == k + 1, (m.size, m.count, k)
            if last is not None:
                assert k == last + f.missed + 1, (last, k, f.missed)
            last, got = k, got + 1
    assert last == n - 1, f"the last frame was {last}, not {n - 1}"
    assert got >= n - 3, f"received only {got} of {n} frames"
    print(f"peer.py video: {got} of {n} decoded frames checked (largest pixel error {worst:.0f})")


def main() -> None:
    role, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if role == "read":
        read(name, n, sys.argv[4])
    elif role == "write":
        write(name, n, sys.argv[4])
    elif role == "video":
        video(name, n)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
