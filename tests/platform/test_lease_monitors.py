"""Two real monitor processes on hosts whose wall clocks disagree: the lease still has one holder.

Each process's wall clock is skewed (`time.time`, through a sitecustomize on its PYTHONPATH), the way
two hosts' clocks drift apart. The standby, running ten seconds ahead with a one-second lease, stands by
while the active one renews, and takes over only when it stops, with the next fencing number. On
PostgreSQL (the store several hosts share) and on SQLite.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tcxhooks.platform.store import open_store
from tests.helpers.net import free_port
from tests.helpers.postgres import store_of
from tests.helpers.services import start, stop, wait_until, write_config

SKEW = """\
import os, time
_real = time.time
_skew = float(os.environ.get("SKEWED_CLOCK_SECONDS", "0"))
time.time = lambda: _real() + _skew
"""
TTL = 1.0
ACQUIRED = re.compile(r"lease (\S+) acquired by (\S+) \(fence (\d+)\)")


@pytest.fixture(params=["postgres", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_of(request.param, tmp_path, "lease_t") as url:
        yield url


def monitor(config: Path, folder: Path, name: str, skew: float) -> subprocess.Popen[bytes]:
    (folder / "clock").mkdir(exist_ok=True)
    (folder / "clock" / "sitecustomize.py").write_text(SKEW)
    env = {
        "PYTHONPATH": str(folder / "clock"),
        "SKEWED_CLOCK_SECONDS": str(skew),
        "TCXH_SERVICES_MONITOR": f"127.0.0.1:{free_port()}",
        "TCXH_METRICS_PORT": str(free_port()),
    }
    return start(["monitor", "-c", str(config)], folder / f"{name}.log", env)


def log(folder: Path, name: str) -> str:
    path = folder / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


async def renewals(url: str, name: str) -> tuple[str, float]:
    store = await open_store(url)
    try:
        row = await store.fetchone("SELECT owner, expires_at FROM platform_leases WHERE name = ?", (name,))
    finally:
        await store.close()
    assert row is not None
    return str(row[0]), float(row[1])


async def test_skewed_host_clocks_never_give_the_lease_to_two_monitors(tmp_path: Path, store_url: str) -> None:
    config = write_config(
        tmp_path,
        store={"url": store_url},
        pbx={"url": "http://127.0.0.1:9", "client_id": "c", "client_secret": "s", "lease_ttl": str(TTL)},
        webhook={"url": "http://127.0.0.1:9/crm"},
        services={"token": "lease-test-token"},
    )
    active = monitor(config, tmp_path, "active", skew=-5)
    standby = None
    try:
        wait_until(lambda: ACQUIRED.search(log(tmp_path, "active")) is not None, 30, "the first monitor's lease")
        found = ACQUIRED.search(log(tmp_path, "active"))
        assert found is not None
        lease, owner, fence = found.group(1), found.group(2), int(found.group(3))
        standby = monitor(config, tmp_path, "standby", skew=+5)
        wait_until(lambda: "standing by" in log(tmp_path, "standby"), 30, "the standby to stand by")

        seen: set[float] = set()
        deadline = time.monotonic() + 60
        while len(seen) < 15:  # fifteen renewals: three ttls of the standby asking every ttl/3
            assert time.monotonic() < deadline, f"the active monitor renewed {len(seen)} times only"
            holder, expires = await renewals(store_url, lease)
            assert holder == owner
            seen.add(expires)
            await asyncio.sleep(0.05)
        assert ACQUIRED.search(log(tmp_path, "standby")) is None
        assert active.poll() is None and "LeaseLost" not in log(tmp_path, "active")

        assert stop(active) == 0  # released on a clean stop: the standby takes it, one fence later
        wait_until(lambda: ACQUIRED.search(log(tmp_path, "standby")) is not None, 30, "the standby's takeover")
        taken = ACQUIRED.search(log(tmp_path, "standby"))
        assert taken is not None and taken.group(2) != owner and int(taken.group(3)) == fence + 1
    finally:
        stop(active)
        if standby is not None:
            stop(standby)
