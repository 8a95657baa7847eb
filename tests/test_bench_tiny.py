"""Every bench that has a tiny size runs here, so none can rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_emulation_bench_runs_tiny() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "emulation.py"), "--faces", "4"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "portable costs" in proc.stdout
    assert proc.stdout.count("agreement mean/worst portable") == 2


def test_cpu_independence_bench_runs_tiny() -> None:
    # Native only: under qemu one face costs ~20 s per model (the bench's own run does that).
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "cpu_independence.py"), "--faces", "1",
         "--cpu", "none"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count(" native ") == 6
