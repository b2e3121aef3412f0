"""Status polling benchmark: one XAPI poll + diff over 2,000 extensions and 100 queues (target < 200 ms).

    python bench/status.py            # full size, prints a table
    python bench/status.py --smoke    # small and quick: proves the benchmark still works

The simulator runs as its own process with a generated directory. Measured in this process:
a poll+diff with nothing changed, one with changes (the events are stored and handed to a no-op
publisher), the pure diff alone, and as the reference the same HTTP requests fetched and decoded
by a bare httpx loop (the ratio shows what paging checks, typing, diff and store add on top).
Peak memory of one poll is traced with tracemalloc in a separate run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tcxhooks.monitor.config import MonitorSettings
from tcxhooks.monitor.pbx.client import PbxClient
from tcxhooks.monitor.status.diff import diff
from tcxhooks.monitor.status.poller import HISTORY_LOOKBACK, StatusPoller
from tcxhooks.monitor.status.xapi import QUEUE_FIELDS, USER_FIELDS
from tcxhooks.platform.config import load_config
from tcxhooks.platform.settings import PlatformSettings
from tcxhooks.platform.store import open_store
from tcxhooks.v1 import events_pb2
from tests.helpers.services import start_simulator, stop, write_config

CLIENT_ID, CLIENT_SECRET = "benchstatus", "bench-status-secret"
TARGET_MS = 200.0


async def reference(pbx: PbxClient, page: int) -> None:
    """The same requests a poll makes, fetched and decoded, nothing else."""
    now = dt.datetime.now(dt.UTC)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    call = (
        f"/xapi/v1/ReportAgentLoginHistory/Pbx.GetAgentLoginHistoryData(clientTimeZone='+00:00',"
        f"startDt={(now - HISTORY_LOOKBACK).strftime(stamp)},endDt={(now + dt.timedelta(days=1)).strftime(stamp)},"
        f"queueDnStr='',agentDnStr='')"
    )

    async def pages(path: str, params: dict[str, str]) -> None:
        skip = 0
        while True:
            body = await pbx.get_json(path, {**params, "$top": str(page), "$skip": str(skip), "$count": "true"})
            skip += len(body["value"])
            if len(body["value"]) < page or skip >= body["@odata.count"]:
                return

    await asyncio.gather(
        pages("/xapi/v1/Users", {"$select": USER_FIELDS, "$orderby": "Id"}),
        pages("/xapi/v1/Queues", {"$select": QUEUE_FIELDS, "$expand": "Agents", "$orderby": "Id"}),
        pages(call, {"$orderby": "QueueNo,AgentNo,loggedInDt"}),
    )


async def bench(extensions: int, queues: int, per_queue: int, rounds: int, changes: int) -> list[tuple[str, str, str]]:
    folder = Path(tempfile.mkdtemp(prefix="bench-status-"))
    sim = start_simulator(folder, CLIENT_ID, CLIENT_SECRET)
    try:
        sim.wait_ready()
        control = httpx.Client(base_url=sim.url, timeout=60)
        control.post(
            "/sim/directory/generate", json={"extensions": extensions, "queues": queues, "agents_per_queue": per_queue}
        ).raise_for_status()
        snapshot = control.get("/sim/directory").json()
        numbers = [u["Number"] for u in snapshot["users"]]
        config = load_config(str(write_config(folder, pbx=sim.pbx())), (PlatformSettings, MonitorSettings))
        store = await open_store(config[PlatformSettings].store.url)
        pbx = PbxClient(config[MonitorSettings].pbx)
        published: list[events_pb2.Event] = []

        async def publish(event: events_pb2.Event) -> None:
            published.append(event)

        poller = StatusPoller(pbx, store, publish, config[MonitorSettings].pbx)
        await poller.poll()  # baseline (and token)
        baseline = await poller.read()

        quiet, changed, refs = [], [], []
        for r in range(rounds):
            started = time.perf_counter()
            await reference(pbx, 500)
            refs.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert await poller.poll() == []
            quiet.append(time.perf_counter() - started)
            for i in range(changes):
                control.post(
                    "/sim/directory/profile",
                    json={
                        "number": numbers[(r * changes + i) % len(numbers)],
                        "profile": "Custom 1" if r % 2 == 0 else "Custom 2",
                    },
                )
            started = time.perf_counter()
            events = await poller.poll()
            changed.append(time.perf_counter() - started)
            assert len(events) == changes, f"{len(events)} events for {changes} changes"

        current = await poller.read()
        started = time.perf_counter()
        for _ in range(rounds):
            diff(baseline, current)
        diff_ms = (time.perf_counter() - started) / rounds * 1000

        tracemalloc.start()
        await poller.poll()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        await pbx.aclose()
        await store.close()
        control.close()
    finally:
        stop(sim.proc)

    q_ms, c_ms, ref_ms = (statistics.median(x) * 1000 for x in (quiet, changed, refs))
    verdict = "ok" if max(q_ms, c_ms) < TARGET_MS else "MISSED"
    return [
        ("directory", f"{extensions} extensions, {queues} queues × {per_queue} agents", ""),
        ("poll+diff, nothing changed (median)", f"{q_ms:.1f} ms", f"< {TARGET_MS:.0f} ms {verdict}"),
        (f"poll+diff, {changes} changes stored+published (median)", f"{c_ms:.1f} ms", f"< {TARGET_MS:.0f} ms"),
        ("reference: same requests, bare fetch+decode (median)", f"{ref_ms:.1f} ms", ""),
        ("ratio poll / reference", f"{q_ms / ref_ms:.2f}×", ""),
        ("diff alone (in memory)", f"{diff_ms:.2f} ms", ""),
        ("peak Python memory of one poll (tracemalloc)", f"{peak / 1e6:.1f} MB", ""),
        ("process max RSS", f"{rss_mb:.0f} MB", ""),
        ("rounds", str(rounds), ""),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small directory, one round")
    parser.add_argument("--rounds", type=int, default=0, help="rounds (default 10, smoke 1)")
    args = parser.parse_args(argv)
    sizes = (200, 10, 10, args.rounds or 1, 5) if args.smoke else (2000, 100, 20, args.rounds or 10, 20)
    rows = asyncio.run(bench(*sizes))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"status polling benchmark (cores: {os.cpu_count()})")
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:>{value_width}}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
