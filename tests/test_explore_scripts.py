"""The explorer's measurement scripts, run tiny: benchmarks/bench_explore.py (decode latency and
page load) and benchmarks/screenshot_explore.py (the side-by-side screenshot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .browser import chromium_paths
from .needs import need

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
HAVE_CHROMIUM = chromium_paths() is not None


@pytest.fixture(scope="module")
def runs(tiny_runs):
    return tiny_runs


def run_script(name: str, args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "VAELAB_HOME": str(home), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(BENCH / name), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_bench_explore_measures_decode_latency_and_page_load(runs, session_home, tmp_path):
    out = tmp_path / "bench.json"
    loads = "1" if HAVE_CHROMIUM else "0"
    args = [str(runs["ae"]), str(runs["vae"]), "--requests", "20", "--page-loads", loads]
    args += ["--classifier", "smoke", "--map-points", "100", "--json", str(out)]
    proc = run_script("bench_explore.py", args, session_home)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert list(result["decode"]) == ["ae (AE)", "vae (VAE β=1)"]
    for d in result["decode"].values():
        assert d["requests"] == 20
        assert 0 < d["server_median_ms"] <= d["median_ms"] <= d["p99_ms"] <= d["max_ms"]
    assert "median ms" in proc.stdout and "p99 ms" in proc.stdout
    if HAVE_CHROMIUM:
        page = result["page"]
        assert page["console_errors"] == 0
        assert 0 < page["median_ready_ms"] <= page["median_settled_ms"]


def test_screenshot_script_writes_a_png_of_both_runs(runs, session_home, tmp_path):
    need(HAVE_CHROMIUM, "chromium and chromium-driver are not installed (.ci/run installs them)")
    out = tmp_path / "explore.png"
    args = [str(runs["ae"]), str(runs["vae"]), "--out", str(out), "--classifier", "smoke"]
    proc = run_script("screenshot_explore.py", [*args, "--map-points", "100"], session_home)
    assert proc.returncode == 0, proc.stderr
    assert "2 runs side by side; console errors: 0" in proc.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
