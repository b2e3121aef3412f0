"""bench/monitor.py still works (smoke size; CI never times it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "monitor.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "calls with exact events                       20            20" in done.stdout, done.stdout
    assert "ringing latency p50 (ms)" in done.stdout
