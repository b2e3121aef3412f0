"""The real services with a fake Bitrix24 portal, as processes: the 3CX simulator, `tcxhooks fakecrm
bitrix24`, and the monitor, dispatcher (with its CRM listener) and media, each started alone so a
test can kill -9 one of them.

    with bitrix_stack(tmp_path) as stack:
        stack.play("inbound_answered", talk_seconds=1)
        stack.wait(lambda: "telephony.externalCall.finish" in stack.methods())
"""
from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

from tests.helpers.net import free_port
from tests.helpers.services import kill9, read_config, start, stop, wait_healthy, wait_http, wait_until, write_config

CLIENT_ID = "crmhooks"
CLIENT_SECRET = "bitrix-e2e-pbx-secret"
PORTAL_CLIENT_ID = "local.6650e1f2a3b4c5.12345678"
PORTAL_SECRET = "fake-bitrix24-client-secret"
SERVICES = ("dispatcher", "media", "monitor")  # the order they start in


@dataclass
class BitrixStack:
    folder: Path
    config: Path
    sim_url: str
    portal_url: str
    listener_url: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    chains: list[str] = field(default_factory=list)  # the call chains a test settled (`settled`)

    # --- processes -------------------------------------------------------------------------
    def start(self, name: str) -> None:
        self.procs[name] = start([name, "-c", str(self.config)], self.folder / f"{name}.log",
                                 env={"TCXH_METRICS_PORT": str(free_port())})  # one [metrics] port per process
        try:
            wait_healthy(read_config(self.config)["services"][name], timeout=60)
        except AssertionError as exc:
            raise AssertionError(f"{name} did not start: {exc}\n{self.logs()}") from None

    def kill9(self, name: str) -> None:
        kill9(self.procs.pop(name))

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-5000:]
                         for p in sorted(self.folder.glob("*.log")))

    # --- the PBX -----------------------------------------------------------------------------
    def play(self, scenario: str, **params: Any) -> int:
        reply = httpx.post(f"{self.sim_url}/sim/play", json={"scenario": scenario, "params": params}, timeout=10)
        reply.raise_for_status()
        return int(reply.json()["call_number"])

    def sim_call(self, number: int) -> dict[str, Any]:
        return dict(httpx.get(f"{self.sim_url}/sim/calls/{number}", timeout=10).json())

    # --- the portal --------------------------------------------------------------------------
    def fake(self, path: str, body: dict[str, Any] | None = None) -> Any:
        reply = httpx.post(f"{self.portal_url}{path}", json=body or {}, timeout=30)
        reply.raise_for_status()
        return reply.json()

    def calls(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.portal_url}/fake/calls", timeout=10).json()["calls"])

    def methods(self) -> list[str]:
        return [c["method"] for c in self.calls()]

    def state(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.portal_url}/fake/state", timeout=10).json())

    def wait(self, condition: Callable[[], bool], timeout: float = 60.0, what: str = "the portal") -> None:
        try:
            wait_until(condition, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; portal calls: {self.methods()}\n{self.logs()}") from None


@contextlib.contextmanager
def bitrix_stack(folder: Path, portal_args: tuple[str, ...] = (), crm: dict[str, Any] | None = None,
                 **sections: dict[str, Any]) -> Iterator[BitrixStack]:
    sim_port, portal_port = free_port(), free_port()
    sim_url, portal_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{portal_port}"
    config = write_config(
        folder,
        pbx={"url": sim_url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "ringing_grace": "1",
             "reconcile": "false", "recover_outages": "false"},
        events={"language": "en"},
        recordings={"grace": "1"},
        dispatcher={"retry_schedule": "1s,2s,5s,10s"},
        **{"crm:b24": {"type": "bitrix24", "url": portal_url, "client_id": PORTAL_CLIENT_ID,
                       "client_secret": PORTAL_SECRET, "oauth_url": f"{portal_url}/oauth/token/",
                       "default_user": "1", "click_to_call": "true", **(crm or {})}},
        **sections)
    parser = read_config(config)  # the listener's port: one no other server of the stack was given
    taken = {sim_port, portal_port, int(parser["metrics"]["port"]), int(parser["recordings"]["listen"].rsplit(":")[1]),
             *(int(address.rsplit(":")[1]) for address in parser["services"].values() if address.count(":") == 1)}
    listener_port = free_port()
    while listener_port in taken:
        listener_port = free_port()
    listener_url = f"http://127.0.0.1:{listener_port}"
    parser["dispatcher"].update({"listen": f"127.0.0.1:{listener_port}", "public_url": listener_url})
    with open(config, "w", encoding="utf-8") as handle:
        parser.write(handle)
    procs = [start(["sim", "--port", str(sim_port), "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
                    "--recordings-dir", str(folder / "pbx-recordings")], folder / "sim.log"),
             start(["fakecrm", "bitrix24", "--port", str(portal_port), *portal_args], folder / "portal.log")]
    stack = BitrixStack(folder, config, sim_url, portal_url, listener_url)
    try:
        wait_http(f"{sim_url}/sim/scenarios", proc=procs[0])
        wait_http(f"{portal_url}/fake/calls", proc=procs[1])
        for name in SERVICES:
            stack.start(name)
        installed = stack.fake("/fake/install", {"url": f"{listener_url}/crm/b24/install"})
        assert installed["status"] == 200, installed
        yield stack
    finally:
        for proc in stack.procs.values():
            stop(proc)
        for proc in procs:
            stop(proc)
