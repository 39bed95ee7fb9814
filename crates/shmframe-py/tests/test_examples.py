"""examples/write.py and examples/read.py (the article's programs) run headless, as separate
processes, with the generated test pattern (there is no camera here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_article_examples_headless(name):
    pytest.importorskip("cv2", reason="the examples need opencv-python-headless")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    reader = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "read.py"), name, "--frames", "20", "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    writer = subprocess.run(
        [sys.executable, str(EXAMPLES / "write.py"), name, "--frames", "400", "--fps", "200",
         "--camera", "99"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    out, err = reader.communicate(timeout=60)
    assert writer.returncode == 0, writer.stderr
    assert "test pattern" in writer.stdout and "published 400 frames" in writer.stdout
    assert reader.returncode == 0, err
    assert "(480, 640, 3) uint8" in out and "received 20 frames" in out
    assert "count=" in out and "count=-" not in out
