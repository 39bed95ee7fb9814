"""`python -m shmframe.bench` runs end to end (tiny frames, short runs; no figures asserted)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

from shmframe.bench import has_short_slices


def test_bench_runs_every_transport():
    out = subprocess.run(
        [sys.executable, "-m", "shmframe.bench", "--seconds", "0.3", "--sizes", "64x48",
         "--rounds", "1", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    rows = doc["sizes"]
    expected = {"shmframe read", "shmframe view", "mp.shared_memory"}
    try:
        import posix_ipc  # noqa: F401

        expected.add("article posix_ipc")
    except ImportError:
        pass
    assert {r["transport"] for r in rows} == expected
    for r in rows:
        assert r["shape"] == [48, 64, 3] and r["fps"] > 0 and r["p50_us"] > 0, r
    # The comparison with the Rust reader runs when a `shmframe` binary is found; its uvloop
    # rows where uvloop is installed.
    uvloop = importlib.util.find_spec("uvloop") is not None
    vs = {r["reader"]: r for r in doc["vs_rust"]}
    if vs:
        loops = {"Python await aview()"} | ({"Python aview() uvloop"} if uvloop else set())
        short = ({"Rust read --low-latency", "Python view() low-latency"}
                 if has_short_slices() else set())
        assert set(vs) == {"Rust shmframe read", "Python Reader.view()",
                           "Python Reader.read()"} | loops | short
        for r in vs.values():
            assert r["p50_us"] is not None, r
        for r in loops:
            assert "added_over_blocking_p50_us" in vs[r]
        floor = doc["asyncio_floor"]
        assert floor["blocking_p50_us"] is not None and floor["asyncio_p50_us"] is not None
        assert floor["added_p50_us"] == floor["asyncio_p50_us"] - floor["blocking_p50_us"]
        if uvloop:
            assert floor["uvloop_added_p50_us"] == (floor["uvloop_p50_us"]
                                                    - floor["blocking_p50_us"])
        else:
            assert floor["uvloop_p50_us"] is None and "uvloop is not installed" in out.stdout
    ours = re.compile(r"^(shmframe\.|sem\.)?bench-\d+-\d+")
    assert not [p for p in os.listdir("/dev/shm") if ours.match(p)]
