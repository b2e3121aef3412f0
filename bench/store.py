"""Store growth: a call's deliveries looked up among 1,000,000 delivered events, and the purge.

    .venv/bin/python bench/store.py              # 1,000,000 events (100,000 calls × 10), SQLite and Postgres
    .venv/bin/python bench/store.py --smoke      # 10,000 events (CI checks it still works)

The dispatcher's store is filled with delivered events (one delivery and one attempt each, as
after a normal day), half of them finished 40 days ago and half yesterday. A real dispatcher
process (`tcxhooks dispatcher`) then answers `ListDeliveries` for random calls over gRPC, the
query behind `tcxhooks deliveries --call ID` (target < 10 ms). Then a dispatcher with
`keep_days = 30` starts: its housekeeping purges at start; printed are how long the purge took,
the rows left (the store stays bounded: only the last `keep_days` remain) and the lookup again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.postgres import postgres_schema  # noqa: E402
from tests.helpers.services import read_config, start, stop, wait_healthy, write_config  # noqa: E402

EVENTS_PER_CALL = 10
OLD_DAYS, RECENT_DAYS, KEEP_DAYS = 40, 1, 30
LOOKUPS = 500
ROWS_PER_TX = 20_000


@dataclass
class Row:
    name: str
    events: int
    fill_s: float
    p50_ms: float
    p99_ms: float
    purge_s: float
    purged: int
    left: int
    after_p50_ms: float
    redeliver_s: float


def _payload(chain: str, n: int) -> bytes:
    from tcxhooks.v1 import common_pb2, events_pb2

    call = events_pb2.CallEvent(
        type=events_pb2.CALL_EVENT_TYPE_ENDED,
        call_id=f"{chain}_{n}",
        direction=common_pb2.DIRECTION_INCOMING,
        caller_id="79161234567",
        did="74951234567",
        user="101",
        user_type=common_pb2.USER_TYPE_EXT,
        finish_type=common_pb2.FINISH_TYPE_OK,
        title="Main line, 0:01:05",
        duration_seconds=65,
        did_name="Main line",
    )
    return events_pb2.Event(event_id=f"{chain}_{n}/ended", chain=chain, call=call).SerializeToString()


def _fill_rows(calls: int, run: str, now: float) -> Iterator[tuple[list[tuple[Any, ...]], ...]]:
    """Rows of events, deliveries and attempts, in slices of ROWS_PER_TX events."""
    from tcxhooks.dispatcher.schema import DELIVERED

    events: list[tuple[Any, ...]] = []
    deliveries: list[tuple[Any, ...]] = []
    attempts: list[tuple[Any, ...]] = []
    delivery_id = 0
    for call in range(calls):
        chain = f"2611{run}_{call}"
        finished = now - 86400 * (OLD_DAYS if call % 2 == 0 else RECENT_DAYS)
        for n in range(EVENTS_PER_CALL):
            delivery_id += 1
            event_id = f"{chain}_{n}/ended"
            events.append((event_id, chain, n + 1, finished, _payload(chain, n)))
            deliveries.append(
                (
                    delivery_id,
                    event_id,
                    "default",
                    chain,
                    n + 1,
                    "call.ended",
                    f"{chain}_{n}",
                    DELIVERED,
                    0,
                    1,
                    finished,
                    finished,
                    finished,
                )
            )
            attempts.append((delivery_id, 1, finished, 200, 0.004, "ok", ""))
        if len(events) >= ROWS_PER_TX or call == calls - 1:
            yield events, deliveries, attempts
            events, deliveries, attempts = [], [], []


async def fill(store_url: str, calls: int, run: str) -> float:
    """Creates the dispatcher schema and the delivered history; returns seconds taken."""
    from tcxhooks.dispatcher.outbox import Outbox
    from tcxhooks.platform.store import Work, executemany, open_store

    store = await open_store(store_url)
    started = time.perf_counter()
    try:
        await Outbox(store, "bench").migrate()

        def insert(events: list[Any], deliveries: list[Any], attempts: list[Any]) -> Work[None]:
            yield executemany(
                "INSERT INTO dispatcher_events (event_id, chain, sequence, created_at, payload) VALUES (?, ?, ?, ?, ?)",
                events,
            )
            yield executemany(
                "INSERT INTO dispatcher_deliveries (id, event_id, endpoint, chain, sequence, event_type, "
                "call_id, status, ready, attempts, created_at, next_attempt_at, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                deliveries,
            )
            yield executemany(
                "INSERT INTO dispatcher_attempts (delivery_id, number, at, http_status, latency, response, "
                "error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                attempts,
            )

        for events, deliveries, attempts in _fill_rows(calls, run, time.time()):
            await store.run(insert(events, deliveries, attempts))
        if store.dialect == "postgres":
            await store.execute(
                "SELECT setval(pg_get_serial_sequence('dispatcher_deliveries', 'id'), "
                "(SELECT MAX(id) FROM dispatcher_deliveries))"
            )
            await store.execute("ANALYZE")
        return time.perf_counter() - started
    finally:
        await store.close()


async def count_deliveries(store_url: str) -> int:
    from tcxhooks.platform.store import open_store

    store = await open_store(store_url)
    try:
        row = await store.fetchone("SELECT COUNT(*) FROM dispatcher_deliveries")
        return int(row[0]) if row else 0
    finally:
        await store.close()


def lookups(address: str, calls: int, run: str, recent_only: bool) -> list[float]:
    """Milliseconds per ListDeliveries(call_id, with attempts) for random calls, one at a time
    (`recent_only`: calls the purge keeps, the odd ones)."""
    import grpc

    from tcxhooks.v1 import dispatcher_service_pb2, dispatcher_service_pb2_grpc

    timings = []
    with grpc.insecure_channel(address) as channel:
        stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)
        rng = random.Random(7)
        for _ in range(LOOKUPS):
            call = rng.randrange(1, calls, 2) if recent_only else rng.randrange(calls)
            leg = rng.randrange(EVENTS_PER_CALL)
            started = time.perf_counter()
            reply = stub.ListDeliveries(
                dispatcher_service_pb2.ListDeliveriesRequest(call_id=f"2611{run}_{call}_{leg}", with_attempts=True),
                timeout=30,
            )
            timings.append((time.perf_counter() - started) * 1000)
            if len(reply.deliveries) != 1 or len(reply.deliveries[0].attempt_log) != 1:
                raise SystemExit(f"call 2611{run}_{call}_{leg}: expected one delivery with one attempt, got {reply}")
    return sorted(timings)


def redeliver_all(address: str) -> tuple[int, float]:
    """`tcxhooks redeliver --since` over every delivery left: (how many, seconds the call took)."""
    import grpc
    from google.protobuf.timestamp_pb2 import Timestamp

    from tcxhooks.v1 import dispatcher_service_pb2, dispatcher_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)
        started = time.perf_counter()
        reply = stub.Redeliver(dispatcher_service_pb2.RedeliverRequest(since_time=Timestamp(seconds=1)), timeout=600)
        return int(reply.count), time.perf_counter() - started


def prune_metric(metrics_port: str) -> float:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('tcxhooks_dispatcher_pruned_total{status="delivered"} '):
            return float(line.split()[1])
    return 0.0


def measure(name: str, store_url: str, calls: int, folder: Path) -> Row:
    run = uuid.uuid4().hex[:6]
    fill_s = asyncio.run(fill(store_url, calls, run))
    total = calls * EVENTS_PER_CALL
    run_dir = folder / name
    run_dir.mkdir()
    keep_all = write_config(
        run_dir,
        webhook={"url": "http://127.0.0.1:9/hook"},
        store={"url": store_url},
        dispatcher={"keep_days": 100_000},
        log={"level": "warning"},
    )
    address = read_config(keep_all)["services"]["dispatcher"]
    proc = start(["dispatcher", "-c", str(keep_all)], run_dir / "dispatcher.log")
    try:
        wait_healthy(address, 60)
        before = lookups(address, calls, run, recent_only=False)
    finally:
        stop(proc)
    purging = write_config(
        run_dir,
        webhook={"url": "http://127.0.0.1:9/hook"},
        store={"url": store_url},
        dispatcher={"keep_days": KEEP_DAYS},
        log={"level": "warning"},
    )
    config = read_config(purging)
    address, metrics_port = config["services"]["dispatcher"], config["metrics"]["port"]
    started = time.perf_counter()
    proc = start(["dispatcher", "-c", str(purging)], run_dir / "dispatcher.log")
    try:
        wait_healthy(address, 60)
        deadline = time.monotonic() + 600
        while prune_metric(metrics_port) < total // 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        purge_s = time.perf_counter() - started
        purged = int(prune_metric(metrics_port))
        after = lookups(address, calls, run, recent_only=True)
        redelivered, redeliver_s = redeliver_all(address)
    finally:
        stop(proc)
    left = asyncio.run(count_deliveries(store_url))
    if redelivered != left:
        raise SystemExit(f"redeliver --since queued {redelivered} deliveries of {left}")
    return Row(
        name,
        total,
        fill_s,
        statistics.median(before),
        before[max(0, int(len(before) * 0.99) - 1)],
        purge_s,
        purged,
        left,
        statistics.median(after),
        redeliver_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="10,000 events")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    calls = (10_000 if args.smoke else args.events) // EVENTS_PER_CALL
    folder = Path(tempfile.mkdtemp(prefix="bench-store-"))
    rows: list[Row] = []
    try:
        rows.append(measure("sqlite", f"sqlite:///{folder / 'store.db'}", calls, folder))
        if not args.no_postgres:
            with postgres_schema("bench_store") as url:
                rows.append(measure("postgres", url, calls, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"\nstore bench: {calls * EVENTS_PER_CALL} delivered events ({calls} calls × {EVENTS_PER_CALL}), half "
        f"{OLD_DAYS} days old, half {RECENT_DAYS} day old; {LOOKUPS} lookups by call id over gRPC; "
        f"{os.cpu_count()} cores"
    )
    print(
        f"{'store':<9} {'events':>9} {'fill s':>7} {'lookup p50 ms':>13} {'p99 ms':>7} {'purge s':>8} "
        f"{'purged':>8} {'left':>8} {'after purge p50 ms':>18} {'target':>8} {'redeliver s':>11}"
    )
    for row in rows:
        print(
            f"{row.name:<9} {row.events:9d} {row.fill_s:7.1f} {row.p50_ms:13.2f} {row.p99_ms:7.2f} "
            f"{row.purge_s:8.1f} {row.purged:8d} {row.left:8d} {row.after_p50_ms:18.2f} {'< 10 ms':>8} "
            f"{row.redeliver_s:11.1f}"
        )
    print(
        f"purge: a dispatcher started with keep_days = {KEEP_DAYS}; the time includes its start. "
        "redeliver: `tcxhooks redeliver --since` of every delivery left, one call"
    )
    if any(row.left != row.events // 2 or row.purged != row.events // 2 for row in rows):
        raise SystemExit("the purge did not leave exactly the recent half")


if __name__ == "__main__":
    main()
