"""Every bench runs here at a tiny size, so none can rot (their real sizes print the numbers
the README and the issues quote; these runs check only that each still works end to end)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = sorted(p.name for p in (REPO / "bench").glob("*.py") if not p.name.startswith("_"))

# script -> (arguments for a tiny run, a line every run prints)
TINY = {
    "auto_precision.py": (["--tiny"], "cold"),
    "calib_throughput.py": (["--tiny"], "faces/s"),
    "cpu_independence.py": (["--faces", "1", "--cpu", "none"], " native "),
    "emulation.py": (["--faces", "4"], "portable costs"),
    "eval_identities.py": (["--tiny"], "numbers equal the whole build's: True"),
    "eval_throughput.py": (["--tiny"], "end to end"),
    "graph_analysis.py": (["--tiny"], "r18:"),
    "ort_build.py": ([], "int16-final"),
}
# Benches that drive the Hailo backend through Docker (run with the Docker tests).
DOCKER = {
    "engines.py": (["--tiny"], "speed-up"),
    "orchestrator_overhead.py": (["--tiny"], "warm: 1 models"),
}


def test_every_bench_has_a_tiny_run() -> None:
    assert sorted([*TINY, *DOCKER]) == BENCH


def _run(script: str, args: list[str], expect: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert expect in out, out[-2000:]
    assert "FAILED" not in out
    return out


@pytest.mark.parametrize("script", sorted(TINY))
def test_bench_runs_tiny(script: str) -> None:
    out = _run(script, *TINY[script])
    if script == "emulation.py":
        assert out.count("agreement mean/worst portable") == 2
    if script == "cpu_independence.py":
        assert out.count(" native ") == 6


@pytest.mark.docker
@pytest.mark.parametrize("script", sorted(DOCKER))
def test_docker_bench_runs_tiny(script: str) -> None:
    from tests.docker_support import engine_or_skip, ensure_standin_image

    engine_or_skip().close()
    ensure_standin_image()
    _run(script, *DOCKER[script])
