"""bench/dispatch.py still works: its smoke mode runs every row (CI never times it)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dispatch_bench_smoke() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "dispatch.py"), "--smoke"], capture_output=True,
                          text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0] + " " + line.split()[1] for line in done.stdout.splitlines()
            if line.startswith(("sqlite ", "postgres "))}
    assert rows == {"sqlite aiohttp", "sqlite httpx", "postgres aiohttp", "postgres httpx"}
    assert "bare httpx loop" in done.stdout and "bare aiohttp loop" in done.stdout
