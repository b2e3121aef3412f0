"""bench/media.py still works: its smoke mode runs and prints every row of the table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_media_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "media.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split("  ")[0] for line in result.stdout.splitlines()}
    assert {
        "tcxhooks transcoder",
        "ffmpeg CLI, same file",
        "speed ratio (CLI time / ours)",
        "latency folder: wav complete -> webhook",
        "latency xapi: wav complete -> webhook",
    } <= rows
