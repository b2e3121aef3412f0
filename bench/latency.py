"""Event latency end to end: the simulator's Call Control change → the CRM receiver having read the webhook.

    .venv/bin/python bench/latency.py            # 10,000 events, 20 calls in flight (README.md, "Measured")
    .venv/bin/python bench/latency.py --smoke    # 30 events (CI checks it still works)

The whole chain runs as real processes on this host: the simulator (`tcxhooks sim`, playing
`inbound_answered` under load), the monitor, the dispatcher (SQLite store, durable) and a receiver
standing in for the CRM. Both ends are stamped on one clock, CLOCK_MONOTONIC (`time.monotonic()`
is system-wide on Linux): the simulator stamps each visible change as it announces it to the
WebSocket (`monotonic` in `/sim/calls`), the receiver when it has read the whole request. Printed:
p50/p90/p99/max per kind (ringing, answered, ended), where the time went on the way (means of the
services' own histograms), and the reference of the same run: the round trip of a bare REST GET to
the simulator (a participant, unauthenticated: the same server and path the monitor reads, answered
401), idle before the load and sampled during it; and each kind's p50 over the reference's p50 under
load, which moves less from run to run than either (the machine's speed moves both).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import CLIENT_ID, CLIENT_SECRET, cpu_seconds, serve_receiver  # noqa: E402

from tests.helpers.net import free_port  # noqa: E402
from tests.helpers.services import read_config, start, start_simulator, stop, wait_healthy, write_config  # noqa: E402

KINDS = ("ringing", "answered", "ended")
EVENT_KIND = {"ringing": "ringing", "hangupincoming": "answered", "incoming": "ended"}
RING, TALK = 0.3, 0.6  # seconds of each call (the simulator adds ~0.05 s between visible changes)
WARM_UP = 10  # calls played and waited for before the measured load (connections open, tokens minted)
REFERENCE_IDLE = 200  # bare GETs before the load
REFERENCE_EVERY = 0.05  # seconds between bare GETs during the load
QUIET = 10.0  # seconds without a new webhook after which the missing ones are given up
MONITOR_STAGES = {
    "monitor: REST GET of a participant": ("tcxhooks_monitor_pbx_request_seconds", 'kind="callcontrol"'),
    "monitor: XAPI GET (ActiveCalls, ...)": ("tcxhooks_monitor_pbx_request_seconds", 'kind="xapi"'),
}
DISPATCHER_STAGES = {
    # lone events go as messages on the monitor's PublishStream call, which this histogram does not time
    "dispatcher: PublishBatch (a backlog's outbox commit)": (
        "grpc_server_handling_seconds",
        'grpc_method="PublishBatch"',
    ),
    "dispatcher: Publish → the CRM's 2xx": ("tcxhooks_dispatcher_delivery_latency_seconds", ""),
}


# --- the receiver (own process): stamps each webhook when it has read the request ---------------------------


def _receiver_main(port: int, conn: Any) -> None:
    seen: list[tuple[int, str, float]] = []

    async def handle(request: Any) -> Any:
        from aiohttp import web

        body = await request.read()
        at = time.monotonic()
        form = dict(parse_qsl(body.decode()))
        chain = form.get("id", "").rsplit("-", 1)[0]
        callid = int(chain.split("_")[1]) if "_" in chain else -1
        seen.append((callid, form.get("event", ""), at))
        return web.Response(text="ok")

    serve_receiver(port, conn, handle, seen)


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.conn, child = multiprocessing.Pipe()
        self.proc = multiprocessing.Process(target=_receiver_main, args=(self.port, child), daemon=True)
        self.proc.start()
        assert self.conn.recv() == "ready"

    def _ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    async def wait_for(self, count: int, timeout: float, quiet: float = QUIET) -> tuple[int, float]:
        """(webhooks received, monotonic time the last of them came) once `count` came, none came for `quiet`
        seconds (some are missing), or `timeout` passed."""
        last = time.monotonic()
        deadline = last + timeout
        got = 0
        while time.monotonic() < deadline and got < count and time.monotonic() - last < quiet:
            now = int(await asyncio.to_thread(self._ask, "count"))
            if now != got:
                got, last = now, time.monotonic()
            await asyncio.sleep(0.2)
        return got, last

    def take(self) -> list[tuple[int, str, float]]:
        return list(self._ask("take"))

    def stop(self) -> None:
        self.conn.send("stop")
        self.proc.join(10)


# --- the reference: a bare REST GET round trip to the simulator -------------------------------------------


async def bare_get(http: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    async with http.get(url) as response:
        await response.read()
    return (time.perf_counter() - started) * 1000


async def sample_reference(http: aiohttp.ClientSession, url: str, stopping: asyncio.Event, out: list[float]) -> None:
    while not stopping.is_set():
        out.append(await bare_get(http, url))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stopping.wait(), REFERENCE_EVERY)


# --- the services' own histograms: where the time went ----------------------------------------------------

Histograms = dict[str, tuple[str, str]]  # label → (metric name, a label of its series, or "")


async def histogram_totals(http: aiohttp.ClientSession, url: str, wanted: Histograms) -> dict[str, tuple[float, float]]:
    """label → (sum of seconds, count) over the series of each wanted histogram."""
    async with http.get(url) as response:
        text = await response.text()
    totals = {label: [0.0, 0.0] for label in wanted}
    for line in text.splitlines():
        for label, (name, series) in wanted.items():
            for i, suffix in enumerate(("_sum", "_count")):
                if line.startswith(name + suffix) and series in line:
                    totals[label][i] += float(line.rsplit(" ", 1)[1])
    return {label: (total[0], total[1]) for label, total in totals.items()}


def means(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, tuple[float, int]]:
    """label → (mean ms, count) of what was observed between the two readings."""
    out = {}
    for label, (total, count) in after.items():
        count -= before[label][1]
        if count > 0:
            out[label] = ((total - before[label][0]) / count * 1000, int(count))
    return out


# --- the run ------------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def play(http: aiohttp.ClientSession, sim_url: str, calls: int, in_flight: int) -> None:
    duration = RING + TALK + 0.15  # three visible changes ~0.05 s apart
    await http.post(
        f"{sim_url}/sim/load",
        json={
            "calls": calls,
            "rate": in_flight / duration,
            "scenario": "inbound_answered",
            "params": {"ring_seconds": RING, "talk_seconds": TALK},
        },
    )


async def run(events: int, in_flight: int, folder: Path) -> int:
    calls = math.ceil(events / 3)
    receiver = Receiver()
    sim = start_simulator(folder, CLIENT_ID, CLIENT_SECRET, "--load-extensions", str(max(in_flight * 2, 40)))
    config = write_config(
        folder,
        pbx=sim.pbx(poll_interval="30"),
        recordings={"enabled": "false"},
        webhook={"url": receiver.url},
        log={"level": "warning"},
    )
    ports = {"monitor": free_port(), "dispatcher": free_port()}
    procs = []
    stopping = asyncio.Event()
    under_load: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            await asyncio.to_thread(sim.wait_ready)
            services = read_config(config)["services"]

            async def read_stages() -> dict[str, tuple[float, float]]:
                return {
                    **await histogram_totals(http, f"http://127.0.0.1:{ports['monitor']}/metrics", MONITOR_STAGES),
                    **await histogram_totals(
                        http, f"http://127.0.0.1:{ports['dispatcher']}/metrics", DISPATCHER_STAGES
                    ),
                }

            for name in ("dispatcher", "monitor"):
                procs.append(
                    start(
                        [name, "-c", str(config)], folder / f"{name}.log", env={"TCXH_METRICS_PORT": str(ports[name])}
                    )
                )
                await asyncio.to_thread(wait_healthy, services[name], 60)
            await play(http, sim.url, WARM_UP, in_flight)
            if (await receiver.wait_for(WARM_UP * 3, 60))[0] < WARM_UP * 3:
                print("the warm-up calls did not all reach the receiver: see the services' logs in", folder)
                return 1
            receiver.take()
            first = (await (await http.get(f"{sim.url}/sim/calls")).json())["calls"]
            skip = {row["call_number"] for row in first}
            reference_url = f"{sim.url}/callcontrol/101/participants/1"
            idle = [await bare_get(http, reference_url) for _ in range(REFERENCE_IDLE)]
            load_before = load_average()
            before = await read_stages()
            watched = {
                "simulator": sim.proc.pid,
                **{name: proc.pid for name, proc in zip(("dispatcher", "monitor"), procs, strict=False)},
            }
            cpu_before = {name: cpu_seconds(pid) for name, pid in watched.items()}
            sampler = asyncio.create_task(sample_reference(http, reference_url, stopping, under_load))
            began = time.monotonic()
            await play(http, sim.url, calls, in_flight)
            got, last = await receiver.wait_for(calls * 3, calls / in_flight * 2 + 120)
            elapsed = last - began
            cpu = {
                name: (cpu_seconds(pid) - cpu_before[name]) / (time.monotonic() - began)
                for name, pid in watched.items()
            }
            stopping.set()
            await sampler
            load_after = load_average()
            rows = (await (await http.get(f"{sim.url}/sim/calls")).json())["calls"]
            stages = means(before, await read_stages())
    finally:
        for proc in reversed(procs):
            stop(proc)
        stop(sim.proc)
        webhooks = receiver.take()
        receiver.stop()

    changes: dict[int, dict[str, float]] = {}
    for row in rows:
        if row["call_number"] in skip:
            continue
        for change in row.get("changes", []):
            at = changes.setdefault(change["callid"], {})
            if change["kind"] == "R":
                at["ended"] = change["monotonic"]  # the last leg's removal ends the call
            elif change["status"] == "Ringing":
                at.setdefault("ringing", change["monotonic"])
            elif change["status"] == "Connected":
                at.setdefault("answered", change["monotonic"])
    latency: dict[str, list[float]] = {kind: [] for kind in KINDS}
    unmatched = 0
    for callid, event, at in webhooks:
        kind = EVENT_KIND.get(event)
        if kind is None or kind not in changes.get(callid, {}):
            unmatched += 1
            continue
        latency[kind].append((at - changes[callid][kind]) * 1000)
    missing = calls * 3 - sum(len(values) for values in latency.values())

    print(
        f"\nevent latency: {calls * 3} events ({calls} calls of inbound_answered, {in_flight} in flight) in "
        f"{elapsed:.1f} s; load average {load_before} → {load_after} on {os.cpu_count()} cores"
    )
    print("simulator's change → the CRM receiver has read the webhook (ms, CLOCK_MONOTONIC)")
    print(f"{'kind':<12}{'events':>8}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}   target")
    print("-" * 70)
    for kind in KINDS:
        values = latency[kind]
        target = "p99 <= 25" if kind == "ended" else "p50 <= 5, p99 <= 25"
        print(
            f"{kind:<12}{len(values):>8}{pct(values, 0.5):>9.2f}{pct(values, 0.9):>9.2f}{pct(values, 0.99):>9.2f}"
            f"{max(values, default=float('nan')):>9.2f}   {target}"
        )
    # the machine's speed moves from run to run (and every stage with it); so does this reference
    ratios = ", ".join(f"{kind} {pct(latency[kind], 0.5) / pct(under_load, 0.5):.1f}" for kind in KINDS)
    print(f"p50 in bare GETs under load (p50 ÷ its p50): {ratios}")
    print(f"{'reference: bare REST GET to the simulator':<42}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    for name, values in (("idle", idle), ("under load", under_load)):
        print(
            f"  {name + f' ({len(values)} GETs)':<40}{pct(values, 0.5):>9.2f}{pct(values, 0.9):>9.2f}"
            f"{pct(values, 0.99):>9.2f}{max(values, default=float('nan')):>9.2f}"
        )
    print("where the time went (means of the services' own histograms over the measured load, ms)")
    for label, (mean, count) in stages.items():
        print(f"  {label:<44}{mean:>8.2f}  ({count})")
    print("  CPU over the load (cores): " + ", ".join(f"{name} {used:.2f}" for name, used in cpu.items()))
    print(f"webhooks received {got}, expected {calls * 3}, missing {missing}, unmatched {unmatched}")
    return 0 if missing == 0 and unmatched == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="30 events (checks the bench works)")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--in-flight", type=int, default=20, help="calls in flight (default 20)")
    args = parser.parse_args()
    events = 30 if args.smoke else args.events
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as folder:
        raise SystemExit(asyncio.run(run(events, args.in_flight, Path(folder))))


if __name__ == "__main__":
    main()
