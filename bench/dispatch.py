"""Dispatcher throughput, latency and ordering against bare HTTP client loops, in one run.

    .venv/bin/python bench/dispatch.py            # 50,000 events over 1,000 calls
    .venv/bin/python bench/dispatch.py --smoke    # a tiny run (CI checks it still works)

A fast local receiver runs in its own process. First the same form bodies are posted by bare client
loops, on the event loop the services run on (uvloop when installed): aiohttp (the dispatcher's
client: the reference the ratios are over, run again after the dispatcher's and taken as the mean of
both), and for comparison httpx, pyreqwest and the hand-written httptools client
(bench/httptools_client.py). Then a real dispatcher process (`tcxhooks dispatcher`)
per store gets every event over gRPC, with a durable store, and delivers it. Printed: webhooks/s
(first Publish → last webhook received), p50/p99 publish→receive latency, events received out of
order per call, our rate as a ratio of the bare aiohttp loop, the rate of a stored backlog's
delivery (drain) and of its intake alone, and the CPU each costs: the bare client and the receiver
per request, the dispatcher process per webhook, and on PostgreSQL the server's processes per webhook
(read from /proc, Linux: the server must run on this machine, as the bench's does).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import cpu_seconds, postgres_cpu_seconds, serve_receiver  # noqa: E402

from tcxhooks.monitor.publisher import WORKERS  # noqa: E402
from tests.helpers.net import free_port  # noqa: E402
from tests.helpers.postgres import postgres_schema  # noqa: E402
from tests.helpers.services import read_config, start, stop, wait_healthy, write_config  # noqa: E402

CONCURRENCY = 16
PUBLISHERS = WORKERS  # as many chains in flight as the monitor's publisher
STREAMS = 8
PACED_RATE = 500.0


# --- the receiver (own process) -----------------------------------------------------------


def _call_id(body: bytes) -> bytes:
    """The form body's `id` field (the call id the bench published), wherever it stands in the body."""
    start = 3 if body.startswith(b"id=") else body.find(b"&id=") + 4
    end = body.find(b"&", start)
    return body[start:] if end < 0 else body[start:end]


def _receiver_main(port: int, conn: Any) -> None:
    seen: list[tuple[bytes, int, float]] = []
    down = [False]

    async def handle(request: Any) -> Any:
        from aiohttp import web

        body = await request.read()
        if down[0]:
            return web.Response(status=503, text="down")
        at = time.time()
        key = _call_id(body)
        seen.append((key, int(request.headers.get("x-tcxhooks-sequence", "0")), at))
        return web.Response(text="ok")

    def command(asked: str) -> bool:
        if asked not in ("down", "up"):
            return False
        down[0] = asked == "down"
        return True

    serve_receiver(port, conn, handle, seen, command)


class ReceiverProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        parent, child = multiprocessing.Pipe()
        self.conn = parent
        self.proc = multiprocessing.Process(target=_receiver_main, args=(self.port, child), daemon=True)

    def start(self) -> ReceiverProcess:
        self.proc.start()
        assert self.conn.recv() == "ready"
        return self

    def count(self) -> int:
        self.conn.send("count")
        return int(self.conn.recv())

    def take(self) -> list[tuple[bytes, int, float]]:
        self.conn.send("take")
        return list(self.conn.recv())

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def set_down(self, down: bool) -> None:
        """Down: every request is answered 503 and not counted (the CRM is away)."""
        self.conn.send("down" if down else "up")
        assert self.conn.recv() == "ok"

    def stop(self) -> None:
        self.conn.send("stop")
        self.proc.join(10)


# --- the workload -------------------------------------------------------------------------


def events(calls: int, per_call: int) -> list[list[Any]]:
    """Per call, its events in order (ringing, answered, ended repeated), one chain per call."""
    from tcxhooks.v1 import common_pb2, events_pb2

    kinds = (events_pb2.CALL_EVENT_TYPE_RINGING, events_pb2.CALL_EVENT_TYPE_ANSWERED, events_pb2.CALL_EVENT_TYPE_ENDED)
    run = uuid.uuid4().hex[:6]
    out = []
    for call in range(calls):
        chain = f"251125{run}_{call}"
        chain_events = []
        for n in range(per_call):
            call_event = events_pb2.CallEvent(
                type=kinds[n % 3],
                call_id=f"{chain}-{n}",
                direction=common_pb2.DIRECTION_INCOMING,
                caller_id="79161234567",
                did="74951234567",
                user=str(100 + n % 50),
                user_type=common_pb2.USER_TYPE_EXT,
                transfer_type=common_pb2.TRANSFER_TYPE_NOT_DEF,
                finish_type=common_pb2.FINISH_TYPE_OK,
                title="Main line, 0:01:05",
                duration_seconds=65,
                ring_seconds=4,
                did_name="Main line",
            )
            chain_events.append(events_pb2.Event(event_id=f"{chain}-{n}/e", chain=chain, call=call_event))
        out.append(chain_events)
    return out


def bodies(count: int) -> list[bytes]:
    from tcxhooks.dispatcher.payloads import render

    sample = events(1, 3)[0]
    for event in sample:
        event.occur_time.GetCurrentTime()
    rendered = [render(e, "form") for e in sample]
    return [rendered[i % 3] for i in range(count)]


# --- bare loops ---------------------------------------------------------------------------


async def bare_httpx(url: str, payloads: list[bytes]) -> float:
    import httpx

    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=CONCURRENCY)) as client:
        return await _loop(payloads, lambda body: client.post(url, content=body, headers=headers))


async def bare_aiohttp(url: str, payloads: list[bytes]) -> float:
    import aiohttp

    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def post(body: bytes) -> None:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()

        return await _loop(payloads, post)


async def bare_pyreqwest(url: str, payloads: list[bytes]) -> float:
    from pyreqwest.client import ClientBuilder

    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    async with ClientBuilder().max_connections(CONCURRENCY).build() as client:

        async def post(body: bytes) -> None:
            resp = await client.post(url).headers(headers).body_bytes(body).build().send()
            await resp.bytes()

        return await _loop(payloads, post)


async def bare_httptools(url: str, payloads: list[bytes]) -> float:
    from httptools_client import HttptoolsTransport, Timeouts

    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    client = HttptoolsTransport(Timeouts(), CONCURRENCY)
    try:
        return await _loop(payloads, lambda body: client.post(url, body, headers))
    finally:
        await client.close()


async def _loop(payloads: list[bytes], post: Any) -> float:
    queue = list(reversed(payloads))
    started = time.perf_counter()

    async def worker() -> None:
        while queue:
            await post(queue.pop())

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return len(payloads) / (time.perf_counter() - started)


def services_loop() -> Any:
    """The event loop the services run on (uvloop when installed, platform/runtime.py). The bare loops run on
    it too: on asyncio's own loop the bare aiohttp loop did ~28 % fewer requests per second, which made
    the ratios over it flatter the dispatcher."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def timed(loop: Any, receiver: ReceiverProcess, count: int) -> tuple[float, float, float]:
    """(requests/s, client CPU seconds per request, receiver CPU seconds per request) of one bare loop run."""
    cpu, receiver_cpu = time.process_time(), receiver.cpu()
    with asyncio.Runner(loop_factory=services_loop()) as runner:
        rate = runner.run(loop)
    return rate, (time.process_time() - cpu) / count, (receiver.cpu() - receiver_cpu) / count


# --- the dispatcher -----------------------------------------------------------------------


@dataclass
class Row:
    name: str
    rate: float
    publish_rate: float
    p50: float
    p99: float
    paced_p50: float
    paced_p99: float
    drain_rate: float
    intake_rate: float  # events stored per second while nothing is delivered (the backlog's publishing)
    out_of_order: int
    missing: int
    paced_retries: int
    cpu_per_webhook: float  # seconds of dispatcher CPU per event of the flood
    drain_cpu: float  # seconds of dispatcher CPU per webhook of the drain
    receiver_cpu: float  # seconds of the receiver's CPU per event of the flood
    publisher_cpu: float  # seconds of this process's CPU per event of the flood (the publisher, mostly)
    server_cpu: float  # seconds of the PostgreSQL server's CPU per event of the flood (NaN: no server, SQLite)
    paced_cpu: float  # seconds of dispatcher CPU per event at the paced rate
    paced_receiver_cpu: float  # seconds of the receiver's CPU per event at the paced rate


async def publish_all(address: str, per_call: list[list[Any]], how: str) -> dict[bytes, float]:
    """Publishes every event, each call's in order, by PUBLISHERS tasks (one call at a time each):
    `monitor` through the monitor's PublishBatcher (as the monitor sends a backlog), `unary` by
    Publish calls; or `stream` over STREAMS PublishStream calls. Returns once all are acknowledged."""
    import grpc

    from tcxhooks.v1 import dispatcher_service_pb2, dispatcher_service_pb2_grpc

    sent: dict[bytes, float] = {}
    async with grpc.aio.insecure_channel(address) as channel:
        stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)

        def ordered(index: int, count: int) -> list[Any]:
            mine = per_call[index::count]
            return [event for round_events in zip(*mine, strict=False) for event in round_events] if mine else []

        async def unary(index: int) -> None:
            for event in ordered(index, PUBLISHERS):
                sent[event.call.call_id.encode()] = time.time()
                await stub.Publish(dispatcher_service_pb2.PublishRequest(event=event), timeout=60)

        async def stream(index: int) -> None:
            mine = ordered(index, STREAMS)

            async def requests() -> Any:
                for event in mine:
                    sent[event.call.call_id.encode()] = time.time()
                    yield dispatcher_service_pb2.PublishRequest(event=event)

            acked = 0
            async for _ in stub.PublishStream(requests(), timeout=600):
                acked += 1
            assert acked == len(mine), (acked, len(mine))

        async def chains(index: int, batcher: Any) -> None:
            for events_of_call in per_call[index::PUBLISHERS]:
                for event in events_of_call:
                    sent[event.call.call_id.encode()] = time.time()
                    await batcher.publish(event)

        if how == "monitor":
            from tcxhooks.monitor.batcher import PublishBatcher

            batcher = PublishBatcher(stub, timeout=60)
            await asyncio.gather(*(chains(i, batcher) for i in range(PUBLISHERS)))
        elif how == "stream":
            await asyncio.gather(*(stream(i) for i in range(STREAMS)))
        else:
            await asyncio.gather(*(unary(i) for i in range(PUBLISHERS)))
    return sent


async def publish_paced(address: str, paced: list[Any], rate: float) -> tuple[dict[bytes, float], int]:
    """Unary Publish calls at a steady `rate` per second, one per event, for latency (a monitor sends a lone
    event as a message on its PublishStream, which costs the dispatcher a little less);
    a failed call is sent again after a growing pause, as the monitor does (latency still counts
    from the first send).
    Returns the send times and how many calls were sent again."""
    import grpc

    from tcxhooks.v1 import dispatcher_service_pb2, dispatcher_service_pb2_grpc

    sent: dict[bytes, float] = {}
    async with grpc.aio.insecure_channel(address) as channel:
        stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)

        async def publish(event: Any) -> int:
            delay, again = 0.1, 0
            while True:
                try:
                    await stub.Publish(dispatcher_service_pb2.PublishRequest(event=event), timeout=60)
                    return again
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT or again == 10:
                        raise
                again += 1
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)

        calls = []
        begin = time.monotonic()
        for n, event in enumerate(paced):
            await asyncio.sleep(max(0.0, begin + n / rate - time.monotonic()))
            sent[event.call.call_id.encode()] = time.time()
            calls.append(asyncio.ensure_future(publish(event)))
        retried = sum(await asyncio.gather(*calls))
    return sent, retried


async def redeliver_since(address: str, since: float) -> int:
    """Sends again every delivery stored since `since` (`tcxhooks redeliver --since`), at once."""
    import grpc
    from google.protobuf.timestamp_pb2 import Timestamp

    from tcxhooks.v1 import dispatcher_service_pb2, dispatcher_service_pb2_grpc

    stamp = Timestamp()
    stamp.FromNanoseconds(int(since * 1e9))
    async with grpc.aio.insecure_channel(address) as channel:
        stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)
        reply = await stub.Redeliver(dispatcher_service_pb2.RedeliverRequest(since_time=stamp), timeout=120)
    return int(reply.count)


def _out_of_order(got: list[tuple[bytes, int, float]]) -> int:
    """Webhooks whose x-tcxhooks-sequence is not above the last one of their call (order or repeats)."""
    chains: dict[bytes, int] = {}
    disorder = 0
    for key, sequence, _ in got:
        chain = key.rsplit(b"-", 1)[0]
        if sequence <= chains.get(chain, 0):
            disorder += 1
        chains[chain] = max(chains.get(chain, 0), sequence)
    return disorder


def _percentile(values: list[float], share: float) -> float:
    return values[max(0, int(len(values) * share) - 1)] if values else float("nan")


def _in_turn(row: Row) -> float:
    return 1 / (1 / max(1e-9, row.intake_rate) + 1 / max(1e-9, row.drain_rate))


def run_dispatcher(
    name: str,
    store_url: str,
    receiver: ReceiverProcess,
    per_call: list[list[Any]],
    backlog: list[list[Any]],
    paced: list[Any],
    folder: Path,
    how: str,
) -> Row:
    total = sum(len(c) for c in per_call)
    backlog_total = sum(len(c) for c in backlog)
    run_dir = folder / name.replace(" ", "-")
    run_dir.mkdir()
    config = write_config(
        run_dir,
        webhook={"url": receiver.url, "concurrency": CONCURRENCY, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
        # a failed attempt waits: only the redelivery below sends the backlog again
        dispatcher={"retry_schedule": "1h"},
        store={"url": store_url},
        log={"level": "warning"},
    )
    address = read_config(config)["services"]["dispatcher"]
    proc = start(["dispatcher", "-c", str(config)], run_dir / "dispatcher.log")
    try:
        wait_healthy(address, 60)
        receiver.take()
        server = postgres_cpu_seconds if store_url.startswith("postgres") else lambda: float("nan")
        started, cpu, receiver_cpu, own_cpu = time.time(), cpu_seconds(proc.pid), receiver.cpu(), time.process_time()
        server_cpu = server()
        sent = asyncio.run(publish_all(address, per_call, how))
        published = time.time()
        deadline = time.monotonic() + 300
        while receiver.count() < total and time.monotonic() < deadline:
            time.sleep(0.05)
        got = receiver.take()
        cpu, receiver_cpu = cpu_seconds(proc.pid) - cpu, receiver.cpu() - receiver_cpu
        server_cpu = server() - server_cpu
        own_cpu = time.process_time() - own_cpu
        paced_cpu, paced_receiver_cpu = cpu_seconds(proc.pid), receiver.cpu()
        paced_sent, paced_retries = asyncio.run(publish_paced(address, paced, PACED_RATE))
        deadline = time.monotonic() + 60
        while receiver.count() < len(paced) and time.monotonic() < deadline:
            time.sleep(0.05)
        paced_got = receiver.take()
        paced_cpu, paced_receiver_cpu = cpu_seconds(proc.pid) - paced_cpu, receiver.cpu() - paced_receiver_cpu
        # The CRM was away (answering 503, each chain's head failed and waits for its retry) while a
        # backlog was stored; once it is back, `redeliver --since` sends the whole backlog at once.
        receiver.set_down(True)
        intake_started = time.time()
        asyncio.run(publish_all(address, backlog, how))
        stored = time.time()
        time.sleep(1.0)  # the heads' first attempts fail meanwhile (none is in flight when it comes back)
        receiver.set_down(False)
        assert asyncio.run(redeliver_since(address, intake_started - 0.001)) == backlog_total
        enabled, drain_cpu = time.time(), cpu_seconds(proc.pid)  # the redelivery committed: the worker starts now
        deadline = time.monotonic() + 300
        while receiver.count() < backlog_total and time.monotonic() < deadline:
            time.sleep(0.05)
        drain_cpu = cpu_seconds(proc.pid) - drain_cpu
        drained = receiver.take()
    finally:
        stop(proc)
    paced_latency = sorted(at - paced_sent[key] for key, _, at in paced_got if key in paced_sent)
    last = max((at for _, _, at in got), default=started)
    latencies = sorted(at - sent[key] for key, _, at in got if key in sent)
    unique = {key for key, _, _ in got}
    drained_unique = {key for key, _, _ in drained}
    drain_rate = len(drained_unique) / max(1e-9, max((at for _, _, at in drained), default=enabled) - enabled)
    return Row(
        name,
        len(unique) / max(1e-9, last - started),
        total / max(1e-9, published - started),
        statistics.median(latencies) if latencies else float("nan"),
        _percentile(latencies, 0.99),
        statistics.median(paced_latency) if paced_latency else float("nan"),
        _percentile(paced_latency, 0.99),
        drain_rate,
        backlog_total / max(1e-9, stored - intake_started),
        _out_of_order(got) + _out_of_order(drained),
        total - len(unique) + len(paced) - len(paced_got) + backlog_total - len(drained_unique),
        paced_retries,
        cpu / total,
        drain_cpu / max(1, len(drained)),
        receiver_cpu / total,
        own_cpu / total,
        server_cpu / total,
        paced_cpu / len(paced),
        paced_receiver_cpu / len(paced),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run (500 events over 20 calls)")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--events", type=int, default=50_000, help="events in all")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--bare-posts", type=int, default=20_000, help="posts per bare client loop")
    parser.add_argument(
        "--publish",
        choices=("monitor", "stream", "unary"),
        default="monitor",
        help=f"how the flood is published by {PUBLISHERS} tasks: through the monitor's PublishBatcher, "
        f"by unary Publish, or over {STREAMS} PublishStream calls",
    )
    args = parser.parse_args()
    calls, total = (20, 500) if args.smoke else (args.calls, args.events)
    per_call = events(calls, total // calls)
    backlog = events(calls, total // calls)
    paced = [e for round_events in zip(*events(100, 1 if args.smoke else 50), strict=False) for e in round_events]
    total = calls * (total // calls)
    bare_count = min(total, 500 if args.smoke else args.bare_posts)
    receiver = ReceiverProcess().start()
    folder = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    rows: list[Row] = []
    try:
        payloads = bodies(bare_count)
        loops = {"aiohttp": bare_aiohttp, "httpx": bare_httpx, "httptools": bare_httptools, "pyreqwest": bare_pyreqwest}
        measured: dict[str, tuple[float, float, float]] = {}
        for client, loop in loops.items():
            measured[client] = timed(loop(receiver.url, payloads), receiver, bare_count)
            receiver.take()
        rows.append(
            run_dispatcher(
                "sqlite", f"sqlite:///{folder / 'outbox'}.db", receiver, per_call, backlog, paced, folder, args.publish
            )
        )
        if not args.no_postgres:
            with postgres_schema("bench_dispatch") as url:
                rows.append(run_dispatcher("postgres", url, receiver, per_call, backlog, paced, folder, args.publish))
        # the reference once more after the dispatcher's runs: a machine whose speed drifts during the
        # run moves the ratios less over the mean of both than over either
        after = timed(bare_aiohttp(receiver.url, payloads), receiver, bare_count)
    finally:
        receiver.stop()
        shutil.rmtree(folder, ignore_errors=True)
    reference = (measured["aiohttp"][0] + after[0]) / 2
    how = {
        "monitor": f"{PUBLISHERS} tasks through the monitor's PublishBatcher",
        "stream": f"{STREAMS} PublishStream calls",
        "unary": f"{PUBLISHERS} concurrent unary Publish tasks",
    }[args.publish]
    print(
        f"\ndispatch bench: {total} events over {calls} calls, endpoint concurrency {CONCURRENCY}, "
        f"published by {how}, {os.cpu_count()} cores, bare loops on {'uvloop' if services_loop() else 'asyncio'}"
    )
    for client, (rate, cpu, receiver_cpu) in measured.items():
        note = "; the dispatcher's client" if client == "aiohttp" else ""
        print(
            f"bare {client + ' loop:':<15} {rate:8.0f} req/s ({bare_count} posts, CPU per request: client "
            f"{cpu * 1e6:4.0f} µs, receiver {receiver_cpu * 1e6:3.0f} µs{note})"
        )
    print(
        f"bare aiohttp loop again after the dispatcher's runs: {after[0]:.0f} req/s (client {after[1] * 1e6:.0f} µs); "
        f"the ratios are over the mean of both runs, {reference:.0f} req/s"
    )
    print(f"paced latency: {len(paced)} more events by unary Publish at {PACED_RATE:.0f}/s after the flood")
    print(
        f"{'row':<10} {'webhooks/s':>10} {'ratio':>6} {'publish/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'paced p50':>9} {'paced p99':>9} {'drain/s':>8} {'ratio':>6} {'intake/s':>8} {'in turn/s':>9} "
        f"{'out of order':>12} {'missing':>7} {'CPU µs':>7} {'drain µs':>8} {'rcv µs':>7} {'pub µs':>7} {'pg µs':>7} "
        f"{'paced µs':>8} {'paced rcv µs':>12}"
    )
    for row in rows:
        print(
            f"{row.name:<10} {row.rate:10.0f} {row.rate / reference:6.2f} {row.publish_rate:9.0f} {row.p50 * 1000:8.1f} "
            f"{row.p99 * 1000:8.1f} {row.paced_p50 * 1000:9.1f} {row.paced_p99 * 1000:9.1f} {row.drain_rate:8.0f} "
            f"{row.drain_rate / reference:6.2f} {row.intake_rate:8.0f} {_in_turn(row):9.0f} {row.out_of_order:12d} "
            f"{row.missing:7d} {row.cpu_per_webhook * 1e6:7.0f} {row.drain_cpu * 1e6:8.0f} {row.receiver_cpu * 1e6:7.0f} "
            f"{row.publisher_cpu * 1e6:7.0f} {'-' if math.isnan(row.server_cpu) else f'{row.server_cpu * 1e6:.0f}':>7} "
            f"{row.paced_cpu * 1e6:8.0f} {row.paced_receiver_cpu * 1e6:12.0f}"
        )
    print(
        "webhooks/s: the flood, publishing and delivering at once (first Publish → last webhook); p50/p99: "
        "publish→receive during the flood (queueing included); paced: the same at a steady rate; drain/s: "
        "a stored backlog of the same size sent at once by `redeliver --since` (CRM back after an outage), "
        "from the redelivery's answer to the last webhook; "
        "intake/s: that backlog's publishing, nothing delivered meanwhile; in turn/s: the flood rate if intake "
        "and delivery took turns on one resource, 1 / (1/intake + 1/drain); "
        "ratio: over the bare aiohttp loop (the mean of its two runs); CPU µs: the dispatcher process's CPU (all threads) per webhook of the "
        "flood, everything included (gRPC intake, durable store, rendering, signing, the POST); drain µs: the same per "
        "webhook of the drain; rcv µs: the "
        "receiver's CPU per webhook of the flood (it shares the machine's cores); pub µs: this process's CPU per "
        "event of the flood, the publisher's (it too shares the cores); pg µs: the PostgreSQL server's CPU per webhook "
        "of the flood, all its processes on this machine (it too shares the cores; SQLite runs inside the dispatcher); "
        "paced µs: the dispatcher's CPU per webhook at the paced rate, where each event has a Publish call, store "
        "transactions and a POST of its own (for sizing, a little above what a monitor's stream messages cost); "
        "paced rcv µs: the receiver's CPU per webhook at that rate, the same run's reference for what a request "
        "costs at a steady pace"
    )
    for row in rows:
        if row.paced_retries:
            print(
                f"{row.name}: {row.paced_retries} paced Publish calls failed once and were sent again (as the "
                f"monitor does)"
            )
    if any(row.missing or row.out_of_order for row in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
