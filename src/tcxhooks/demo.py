"""`tcxhooks demo`: the whole product on one laptop, with no PBX and no CRM.

Starts the 3CX V20 simulator, a local webhook receiver and `tcxhooks up`, plays a call
(scenario 1 by default: inbound via a DID to 101, answered, caller hangs up), prints each
webhook as it arrives, checks that the mp3 link downloads, then stops everything.
Exit 0 when every expected webhook arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import configparser
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.util import find_spec
from urllib.parse import parse_qsl

import httpx
from aiohttp import web

CLIENT_ID = "crmhooks"
CLIENT_SECRET = "demo-secret-not-for-production"
WEBHOOK_SECRET = "whsec_ZGVtby1zaWduaW5nLWtleS0zMi1ieXRlcy1sb25nISE="


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Webhook:
    received: float
    fields: list[tuple[str, str]]

    def get(self, key: str) -> str:
        return next((v for k, v in self.fields if k == key), "")

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.fields if k == key]


class DemoReceiver:
    """A tiny CRM: records and prints every webhook."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/crm"
        self.hooks: list[Webhook] = []
        self.arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._started = time.monotonic()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/crm", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        hook = Webhook(time.monotonic(), parse_qsl(body, keep_blank_values=True))
        self.hooks.append(hook)
        self._print(hook, request.headers.get("x-tcxhooks-sequence", "?"))
        self.arrived.set()
        return web.Response(text="ok")

    def _print(self, hook: Webhook, sequence: str) -> None:
        event = hook.get("event")
        shown = [f"{k}={v}" for k, v in hook.fields if k not in ("event", "links[]", "text", "summary")]
        print(f"  +{hook.received - self._started:6.2f}s  #{sequence:<3} {event:<15} " + " ".join(shown), flush=True)
        for link in hook.all("links[]"):
            print(f"{'':28}mp3: {link}", flush=True)
        for key in ("summary", "text"):
            if hook.get(key):
                print(f"{'':28}{key}: {hook.get(key)[:300]}", flush=True)


def write_config(
    folder: str, sim_url: str, delivery: dict[str, dict[str, str]], analytics: bool, metrics_port: int | None = None
) -> str:
    """The demo's ini in `folder`: the simulator as the PBX, `delivery` (the sections that say where events go:
    a webhook, or a CRM adapter and its listener), services on free loopback ports."""
    media_port = _free_port()
    parser = configparser.ConfigParser(interpolation=None)
    parser["pbx"] = {
        "url": sim_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "poll_interval": "2",
        "ringing_grace": "1",
    }
    parser["events"] = {"language": "en"}
    parser.read_dict(delivery)
    parser["recordings"] = {
        "local_dir": os.path.join(folder, "recordings"),
        "grace": "2",
        "listen": f"127.0.0.1:{media_port}",
        "public_url": f"http://127.0.0.1:{media_port}",
    }
    parser["analytics"] = {"enabled": "true" if analytics else "false", "backend": "offline", "language": "en-US"}
    parser["store"] = {"url": f"sqlite:///{os.path.join(folder, 'tcxhooks.db')}"}
    parser["services"] = {name: f"127.0.0.1:{_free_port()}" for name in ("monitor", "dispatcher", "media", "analytics")}
    parser["metrics"] = {"port": str(metrics_port or _free_port())}
    parser["log"] = {"level": "warning"}
    path = os.path.join(folder, "tcxhooks.ini")
    with open(path, "w", encoding="utf-8") as handle:
        parser.write(handle)
    return path


def spawn_simulator(folder: str, port: int) -> subprocess.Popen[bytes]:
    """The 3CX simulator of a demo, its recordings and log in `folder`."""
    args = ["sim", "--port", str(port), "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET]
    return _spawn([*args, "--recordings-dir", os.path.join(folder, "pbx-recordings")], os.path.join(folder, "sim.log"))


def _spawn(args: list[str], log_path: str) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:  # the child has its own copy of the file
        return subprocess.Popen(
            [sys.executable, "-m", "tcxhooks", *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                await client.get(url, timeout=1)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def expected_events(analytics: bool) -> list[str]:
    events = ["ringing", "hangupincoming", "incoming", "recording"]
    return [*events, "analytics"] if analytics else events


async def run_demo(scenario: str, talk: float, keep: bool, timeout: float) -> int:
    folder = tempfile.mkdtemp(prefix="tcxhooks-demo-")
    analytics = find_spec("faster_whisper") is not None
    receiver = DemoReceiver(_free_port())
    await receiver.start()
    sim_port = _free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    webhook = {"url": receiver.url, "format": "form", "secret": WEBHOOK_SECRET}
    config = write_config(folder, sim_url, {"webhook": webhook}, analytics)
    print(f"tcxhooks demo — work folder {folder}")
    print(f"  3CX simulator  {sim_url}")
    print(f"  CRM receiver   {receiver.url}")
    if not analytics:
        print("  analytics      off (install the offline extra: pip install 'tcxhooks[offline]')")
    sim = spawn_simulator(folder, sim_port)
    up = None
    try:
        await _wait_http(sim_url + "/sim/scenarios", 30)
        up = _spawn(["up", "-c", config], os.path.join(folder, "services.log"))
        await _wait_serving(config, 90)
        print(f"\nplaying scenario {scenario!r}; webhooks as the CRM receives them:")
        async with httpx.AsyncClient() as client:
            reply = await client.post(
                sim_url + "/sim/play", json={"scenario": scenario, "params": {"talk_seconds": talk}}
            )
            reply.raise_for_status()
        wanted = expected_events(analytics)
        ok = await _wait_events(receiver, wanted, timeout)
        await _check_links(receiver)
        if not ok:
            got = [h.get("event") for h in receiver.hooks]
            print(f"\nmissing webhooks: expected {wanted}, got {got}; logs in {folder}", file=sys.stderr)
            return 1
        print(f"\ndone: {len(receiver.hooks)} webhooks received.")
        return 0
    finally:
        if up is not None:
            _stop(up)
        _stop(sim)
        await receiver.stop()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


async def _wait_serving(config_path: str, timeout: float) -> None:
    """Waits until all four services report SERVING on gRPC health (the monitor: PBX connected)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from .platform.config import load_config
    from .platform.grpc import open_channel
    from .platform.settings import PlatformSettings
    from .product import SERVICES

    services = load_config(config_path, (PlatformSettings,))[PlatformSettings].services
    deadline = time.monotonic() + timeout
    for name in SERVICES:
        async with open_channel(services, name) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except Exception:  # not up yet
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the {name} service did not become ready")
                await asyncio.sleep(0.2)


async def _wait_events(receiver: DemoReceiver, wanted: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [h.get("event") for h in receiver.hooks]
        if all(event in got for event in wanted):
            return True
        receiver.arrived.clear()
        try:
            await asyncio.wait_for(receiver.arrived.wait(), max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
    return False


async def _check_links(receiver: DemoReceiver) -> None:
    async with httpx.AsyncClient(follow_redirects=True) as client:
        for hook in receiver.hooks:
            for link in hook.all("links[]"):
                reply = await client.get(link)
                kind = reply.headers.get("content-type", "?")
                print(f"  link check: {reply.status_code} {kind} {len(reply.content)} bytes  {link[:60]}…")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tcxhooks demo", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="inbound_answered", help="simulator scenario to play")
    parser.add_argument("--talk", type=float, default=6.0, help="talk time of the call in seconds")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for all webhooks")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, store, mp3 files)")
    parser.add_argument(
        "--crm",
        choices=sorted(_crm_demos()),
        help="play the call into this fake CRM (an adapter) and print the API calls it receives, instead of webhooks",
    )
    args = parser.parse_args(argv)
    if args.crm:
        from .democrm import run_crm_demo

        raise SystemExit(asyncio.run(run_crm_demo(args.crm, args.scenario, args.talk, args.keep, args.timeout)))
    raise SystemExit(asyncio.run(run_demo(args.scenario, args.talk, args.keep, args.timeout)))


def _crm_demos() -> list[str]:
    from .democrm import DEMOS

    return list(DEMOS)
