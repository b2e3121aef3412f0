"""bench/dispatch.py and bench/store.py still work: their smoke modes run every row (CI never times them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dispatch_bench_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dispatch.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = [line.split() for line in done.stdout.splitlines() if line.startswith(("sqlite ", "postgres "))]
    assert [row[0] for row in table] == ["sqlite", "postgres"]
    assert all(f"bare {client} loop" in done.stdout for client in ("aiohttp", "httpx", "httptools", "pyreqwest"))
    # the reference is run before and after the dispatcher's rows, and the ratios are over their mean
    before = float(re.search(r"bare aiohttp loop: +(\d+) req/s", done.stdout)[1])  # type: ignore[index]
    after = float(re.search(r"after the dispatcher's runs: (\d+) req/s", done.stdout)[1])  # type: ignore[index]
    mean = float(re.search(r"the mean of both runs, (\d+) req/s", done.stdout)[1])  # type: ignore[index]
    assert abs(mean - (before + after) / 2) <= 1, done.stdout
    header = next(line.split() for line in done.stdout.splitlines() if line.startswith("row "))
    assert {"intake/s", "drain", "rcv", "pub", "pg"} <= set(header), header
    # the name and 20 figures: nothing missing, 0 out of order and 0 missing in every row
    assert all(len(row) == 21 and row[12] == "0" and row[13] == "0" for row in table), done.stdout
    assert all(abs(float(row[2]) - float(row[1]) / mean) <= 0.01 for row in table), done.stdout
    # the PostgreSQL server's CPU is measured for its row; SQLite has no server
    assert table[0][18] == "-" and float(table[1][18]) > 0, done.stdout
    # the CPU a webhook costs at the paced rate, the dispatcher's and the receiver's, in every row
    assert all(float(row[19]) > 0 and float(row[20]) > 0 for row in table), done.stdout


def test_store_bench_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "store.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith(("sqlite ", "postgres "))]
    assert [row[0] for row in rows] == ["sqlite", "postgres"]
    # 10,000 events, half purged by a dispatcher started with keep_days = 30, half left
    assert all(row[1] == "10000" and row[6] == "5000" and row[7] == "5000" for row in rows), done.stdout
