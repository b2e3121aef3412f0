"""bench/latency.py still works end to end (smoke size; CI never times it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_latency_bench_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "latency.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "webhooks received 30, expected 30, missing 0, unmatched 0" in done.stdout, done.stdout
    for kind in ("ringing", "answered", "ended"):
        assert any(line.split()[:2] == [kind, "10"] for line in done.stdout.splitlines()), done.stdout
    assert "idle (200 GETs)" in done.stdout
