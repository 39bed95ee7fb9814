"""Cross-language: the `shmframe` command (Rust) and the Python package on one channel.

The binary is found through $SHMFRAME_BIN (scripts/test.d/40-python.sh sets it to the debug
build), else target/debug/shmframe in the repository.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

import shmframe

ROOT = Path(__file__).resolve().parents[3]
BIN = os.environ.get("SHMFRAME_BIN") or str(ROOT / "target" / "debug" / "shmframe")

pytestmark = pytest.mark.skipif(
    not os.access(BIN, os.X_OK),
    reason=f"the shmframe binary is not built ({BIN}); run `cargo build -p shmframe-cli`",
)


def write_png(path: Path, rgb: np.ndarray) -> None:
    """A minimal 8-bit RGB PNG (no dependency on an image library)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


class ReaderThenCommand:
    """Opens a Reader that waits for the channel, then starts the CLI writer."""

    def __init__(self, cmd: list, name: str) -> None:
        self.cmd, self.name = cmd, name

    def __enter__(self):
        box: dict = {}

        def open_reader() -> None:
            try:
                box["r"] = shmframe.Reader(self.name, timeout=30)
            except shmframe.Error as e:
                box["error"] = e

        t = threading.Thread(target=open_reader)
        t.start()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        t.join(timeout=60)
        if "r" not in box:
            if self.proc.poll() is None:
                self.proc.kill()
            out, err = self.proc.communicate(timeout=30)
            raise AssertionError(f"{box.get('error')}; the command said: {err}")
        self.r = box["r"]
        return self.r, self.proc

    def __exit__(self, exc_type, *exc) -> None:
        self.r.close()
        if exc_type is not None and self.proc.poll() is None:
            self.proc.kill()  # the test failed: do not leave the writer running


def test_cli_writer_to_python_reader(name, tmp_path):
    rgb = (np.arange(48 * 64 * 3, dtype=np.uint32).reshape(48, 64, 3) * 37 % 251).astype(np.uint8)
    png = tmp_path / "pattern.png"
    write_png(png, rgb)
    cmd = [BIN, "write", name, "--source", str(png), "--format", "rgb8",
           "--frames", "40", "--fps", "200"]
    with ReaderThenCommand(cmd, name) as (r, proc):
        frames = list(r)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert frames and frames[-1].index == 39
    for f in frames:
        assert f.array.dtype == np.uint8 and f.array.shape == (48, 64, 3)
        assert np.array_equal(f.array, rgb), f"frame {f.index} differs from the image"


def test_python_writer_to_cli_reader(name):
    a = np.zeros((120, 160, 3), np.uint8)
    with shmframe.Writer(name) as w:
        proc = subprocess.Popen(
            [BIN, "read", name, "--headless", "--frames", "10", "--json", "--timeout", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        k = 0
        while proc.poll() is None:  # publish until the reader has had its frames
            a[:] = k % 256
            w.write(a)
            k += 1
            try:
                proc.wait(timeout=0.005)
            except subprocess.TimeoutExpired:
                pass
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["frames"] == 10
    assert summary["shape"] == [120, 160, 3] and summary["dtype"] == "uint8"
    assert summary["latency_us_p50"] >= 0 and summary["missed"] >= 0


def test_cli_reads_python_metadata_channel_info(name):
    import ctypes

    class Pose(ctypes.Structure):
        _fields_ = [("x", ctypes.c_double), ("id", ctypes.c_uint32 * 2)]

    with shmframe.Writer(name, meta=Pose) as w:
        w.write(np.zeros((2, 2), np.float32), meta=Pose(1.5, (3, 4)))
        out = subprocess.run([BIN, "info", name, "--json"], capture_output=True, text=True,
                             timeout=30)
    assert out.returncode == 0, out.stderr
    schema = json.loads(out.stdout)["schema"]
    assert (schema["type_name"], schema["size"]) == ("Pose", 16)
    fields = [(f["name"], f["dtype"], f["count"], f["offset"]) for f in schema["fields"]]
    assert fields == [("x", "float64", 1, 0), ("id", "uint32", 2, 8)]
