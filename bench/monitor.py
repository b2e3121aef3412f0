"""Monitor at scale: 1,000 concurrent simulated calls at 100 starts/s → CPU, RSS, event latency, correctness.

    .venv/bin/python bench/monitor.py            # 1,000 calls, 100 starts/s (README.md, "Measured")
    .venv/bin/python bench/monitor.py --smoke    # 20 calls (CI checks it still works)

A simulator process plays `inbound_answered` under load (`POST /sim/load`, every call lasting the whole
ramp so all are up at once); a real monitor process (`tcxhooks monitor`) publishes to a recording
DispatcherService in this process. Latency = the simulator's timestamp of a Call Control change → the
matching CallEvent arriving at Publish (ringing, answered, and ended: a plain call's end goes out once
XAPI `ActiveCalls` no longer lists it, without waiting `[pbx] ringing_grace`). The reference, in the same run, is a bare WebSocket reader noting when each Upsert
frame arrives: the floor of notification delivery on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import CLIENT_ID, CLIENT_SECRET, cpu_seconds  # noqa: E402

from tcxhooks.monitor.config import MonitorSettings  # noqa: E402
from tcxhooks.monitor.pbx.client import PbxClient  # noqa: E402
from tcxhooks.platform.config import load_config  # noqa: E402
from tcxhooks.v1 import dispatcher_service_pb2, dispatcher_service_pb2_grpc, events_pb2  # noqa: E402
from tests.helpers.net import free_port  # noqa: E402
from tests.helpers.services import read_config, start, start_simulator, stop, wait_healthy, write_config  # noqa: E402

GRACE = 1.0
KINDS = {
    events_pb2.CALL_EVENT_TYPE_RINGING: "ringing",
    events_pb2.CALL_EVENT_TYPE_ANSWERED: "answered",
    events_pb2.CALL_EVENT_TYPE_ENDED: "ended",
}


class Recorder(dispatcher_service_pb2_grpc.DispatcherServiceServicer):
    def __init__(self) -> None:
        self.events: list[tuple[float, events_pb2.Event]] = []

    async def Publish(self, request: Any, context: Any) -> Any:
        self.events.append((time.time(), request.event))
        return dispatcher_service_pb2.PublishResponse(sequence=len(self.events))

    async def PublishBatch(self, request: Any, context: Any) -> Any:
        outcomes = []
        for event in request.events:
            self.events.append((time.time(), event))
            outcomes.append(
                dispatcher_service_pb2.PublishOutcome(
                    stored=dispatcher_service_pb2.PublishResponse(sequence=len(self.events))
                )
            )
        return dispatcher_service_pb2.PublishBatchResponse(outcomes=outcomes)


async def _connect(url: str, mint: Callable[[], Awaitable[str]], attempts: int = 5) -> Any:
    """The socket, with a token minted for it; a 401 (the monitor re-minted its own token in between,
    which knocks ours out) is met with a new token."""
    for attempt in range(1, attempts + 1):
        token = await mint()
        try:
            return await websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None)
        except websockets.exceptions.InvalidStatus as exc:
            if exc.response.status_code != 401 or attempt == attempts:
                raise
            await asyncio.sleep(0.2)
    raise AssertionError("unreachable")


class BareListener:
    """The reference: a bare Call Control WebSocket reader noting when each entity's first Upsert arrives.

    It fetches nothing (3CX keeps one live token per client: a second client doing GETs would knock the
    monitor's token out), so it is the floor of notification delivery on this machine.
    """

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    async def run(
        self, url: str, mint: Callable[[], Awaitable[str]], connected: asyncio.Event, stopping: asyncio.Event
    ) -> None:
        async with await _connect(url, mint) as ws:
            connected.set()
            while not stopping.is_set():
                try:
                    frame = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                at = time.time()
                event = json.loads(frame)["event"]
                if event["event_type"] == 0:
                    self.seen.setdefault(event["entity"], at)


async def wait_connected(connected: asyncio.Event, listener: asyncio.Task[None], timeout: float = 30.0) -> None:
    """Until the reference listener is connected; its error (or a timeout) ends the bench instead of a hang."""
    waiter = asyncio.create_task(connected.wait())
    done, _ = await asyncio.wait({waiter, listener}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if listener in done:
        listener.result()  # raises the connect error
        raise RuntimeError("the reference listener stopped before it connected")
    if waiter not in done:
        raise RuntimeError(f"the reference listener did not connect within {timeout:g} s")


class ProcStats:
    """CPU seconds and RSS of one process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = 0

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    value = int(line.split()[1]) / 1024
                    self.peak_rss = max(self.peak_rss, int(value))
                    return value
        return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(calls: int, rate: float, folder: Path) -> int:
    sim = start_simulator(folder, CLIENT_ID, CLIENT_SECRET, "--load-extensions", "200")
    recorder = Recorder()
    server = grpc.aio.server()
    dispatcher_service_pb2_grpc.add_DispatcherServiceServicer_to_server(recorder, server)
    dispatcher_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    config = write_config(
        folder,
        pbx=sim.pbx(ringing_grace=str(GRACE), poll_interval="30"),
        services={"dispatcher": f"127.0.0.1:{dispatcher_port}"},
        recordings={"enabled": "false"},
        webhook={"url": "http://127.0.0.1:9/hook"},
        log={"level": "warning"},
    )
    monitor = None
    stopping = asyncio.Event()
    bare_task = None
    try:
        async with httpx.AsyncClient(base_url=sim.url, timeout=30) as client:
            await asyncio.to_thread(sim.wait_ready)
            monitor = start(
                ["monitor", "-c", str(config)], folder / "monitor.log", env={"TCXH_METRICS_PORT": str(free_port())}
            )
            await asyncio.to_thread(wait_healthy, read_config(config)["services"]["monitor"], 60)
            bare = BareListener()
            settings = load_config(
                None,
                (MonitorSettings,),
                env={"TCXH_PBX_URL": sim.url, "TCXH_PBX_CLIENT_ID": CLIENT_ID, "TCXH_PBX_CLIENT_SECRET": CLIENT_SECRET},
            )[MonitorSettings].pbx

            async def mint() -> str:
                pbx = PbxClient(settings)
                try:
                    return await pbx.token()
                finally:
                    await pbx.aclose()

            connected = asyncio.Event()
            probe = PbxClient(settings)
            url = probe.websocket_url("/callcontrol/ws")
            await probe.aclose()
            bare_task = asyncio.create_task(bare.run(url, mint, connected, stopping))
            await wait_connected(connected, bare_task)
            await asyncio.sleep(1)  # the monitor's next request re-mints its knocked-out token once
            stats = ProcStats(monitor.pid)
            cpu0, wall0 = stats.cpu(), time.monotonic()
            talk = calls / rate + 5
            await client.post(
                "/sim/load",
                json={
                    "calls": calls,
                    "rate": rate,
                    "scenario": "inbound_answered",
                    "params": {"ring_seconds": 1, "talk_seconds": talk},
                },
            )
            want = calls * 3
            deadline = time.monotonic() + talk + calls / rate + 60
            while time.monotonic() < deadline and len(recorder.events) < want:
                stats.rss_mb()
                await asyncio.sleep(0.5)
            await asyncio.sleep(GRACE + 1)
            cpu, wall = stats.cpu() - cpu0, time.monotonic() - wall0
            stats.rss_mb()
            rows = (await client.get("/sim/calls")).json()["calls"]
    finally:
        stopping.set()
        if bare_task is not None:
            await bare_task
        if monitor is not None:
            stop(monitor)
        stop(sim.proc)
        await server.stop(1)

    changes: dict[int, dict[str, float]] = {}
    ringing_entity: dict[str, float] = {}
    for row in rows:
        for change in row.get("changes", []):
            if change["status"] == "Ringing":
                ringing_entity[change["entity"]] = change["time"]
            key = (
                "ended"
                if change["kind"] == "R"
                else {"Ringing": "ringing", "Connected": "answered"}.get(change["status"], "")
            )
            if key:
                changes.setdefault(change["callid"], {}).setdefault(key, change["time"])
    per_call: dict[int, list[str]] = {}
    latency: dict[str, list[float]] = {"ringing": [], "answered": [], "ended": []}
    for at, event in recorder.events:
        callid = int(event.call.call_id.rsplit("-", 1)[0].split("_")[1])
        kind = KINDS.get(event.call.type, "other")
        per_call.setdefault(callid, []).append(kind)
        if kind in changes.get(callid, {}):
            latency[kind].append((at - changes[callid][kind]) * 1000)
    bare_latency = [(bare.seen[e] - t) * 1000 for e, t in ringing_entity.items() if e in bare.seen]
    wrong = [c for c in changes if per_call.get(c) != ["ringing", "answered", "ended"]]
    total = calls
    print(f"\nmonitor scale: {calls} calls at {rate:g} starts/s, all concurrent (inbound_answered, talk {talk:.0f} s)")
    print(f"{'metric':<34}{'value':>14}{'target':>14}{'reference':>14}{'ratio':>8}")
    print("-" * 84)
    ring_p50, ring_p99, bare_p50 = pct(latency["ringing"], 0.5), pct(latency["ringing"], 0.99), pct(bare_latency, 0.5)
    print(f"{'calls with exact events':<34}{total - len(wrong):>14}{total:>14}")
    print(f"{'monitor CPU (cores, avg)':<34}{cpu / wall:>14.3f}{'< 1':>14}")
    print(f"{'monitor RSS peak (MB)':<34}{stats.peak_rss:>14}{'< 200':>14}")
    print(f"{'ringing latency p50 (ms)':<34}{ring_p50:>14.1f}{'<= 5':>14}{bare_p50:>14.1f}{ring_p50 / bare_p50:>8.1f}")
    print(f"{'ringing latency p99 (ms)':<34}{ring_p99:>14.1f}{'<= 25':>14}{pct(bare_latency, 0.99):>14.1f}")
    print(
        f"{'answered latency p50/p99 (ms)':<34}{pct(latency['answered'], 0.5):>7.1f}/{pct(latency['answered'], 0.99):<6.1f}"
    )
    print(f"{'ended latency p50/p99 (ms)':<34}{pct(latency['ended'], 0.5):>7.1f}/{pct(latency['ended'], 0.99):<6.1f}")
    print(f"{'events published':<34}{len(recorder.events):>14}{calls * 3:>14}")
    if wrong:
        print(f"calls with wrong events: {len(wrong)}, e.g. {wrong[:5]} → {[per_call.get(c) for c in wrong[:5]]}")
    return 0 if not wrong else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="20 calls (checks the bench works)")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    calls, rate = (20, 20.0) if args.smoke else (args.calls, args.rate)
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as folder:
        raise SystemExit(asyncio.run(run(calls, rate, Path(folder))))


if __name__ == "__main__":
    main()
