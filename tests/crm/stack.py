"""The real services with a fake CRM, as processes: the 3CX simulator, `tcxhooks fakecrm NAME`, and
the monitor, dispatcher (with its CRM listener) and media, each started alone so a test can kill -9
one of them.

    with bitrix_stack(tmp_path) as stack:
        stack.play("inbound_answered", talk_seconds=1)
        stack.wait(lambda: "telephony.externalCall.finish" in stack.methods())
    with crm_stack(tmp_path, "zammad", ("--token", "t"), lambda url: {"type": "zammad", "url": url,
                                                                       "token": "t"}) as stack: ...
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx

from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tcxhooks.v1 import dispatcher_service_pb2_grpc as pbg
from tests.helpers.net import free_port
from tests.helpers.services import (
    kill9,
    read_config,
    start,
    start_simulator,
    stop,
    wait_healthy,
    wait_http,
    wait_until,
    write_config,
)

CLIENT_ID = "crmhooks"
CLIENT_SECRET = "bitrix-e2e-pbx-secret"
PORTAL_CLIENT_ID = "local.6650e1f2a3b4c5.12345678"
PORTAL_SECRET = "fake-bitrix24-client-secret"
SERVICES = ("dispatcher", "media", "monitor")  # the order they start in


@dataclass
class CrmStack:
    folder: Path
    config: Path
    sim_url: str
    crm_url: str  # the fake CRM
    listener_url: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    chains: list[str] = field(default_factory=list)  # the call chains a test settled (`settled`)

    # --- processes -------------------------------------------------------------------------
    def start(self, name: str) -> None:
        self.procs[name] = start(
            [name, "-c", str(self.config)], self.folder / f"{name}.log", env={"TCXH_METRICS_PORT": str(free_port())}
        )  # one [metrics] port per process
        try:
            wait_healthy(read_config(self.config)["services"][name], timeout=60)
        except AssertionError as exc:
            raise AssertionError(f"{name} did not start: {exc}\n{self.logs()}") from None

    def kill9(self, name: str) -> None:
        kill9(self.procs.pop(name))

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-5000:] for p in sorted(self.folder.glob("*.log"))
        )

    # --- the PBX -----------------------------------------------------------------------------
    def play(self, scenario: str, **params: Any) -> int:
        reply = httpx.post(f"{self.sim_url}/sim/play", json={"scenario": scenario, "params": params}, timeout=10)
        reply.raise_for_status()
        return int(reply.json()["call_number"])

    def sim_call(self, number: int) -> dict[str, Any]:
        return dict(httpx.get(f"{self.sim_url}/sim/calls/{number}", timeout=10).json())

    # --- the dispatcher ----------------------------------------------------------------------
    def pending(self, chain: str) -> int:
        """How many deliveries of the call chain the dispatcher has not delivered yet (nor given up)."""
        with grpc.insecure_channel(read_config(self.config)["services"]["dispatcher"]) as channel:
            reply = pbg.DispatcherServiceStub(channel).ListDeliveries(
                pb.ListDeliveriesRequest(status=pb.DELIVERY_STATUS_PENDING, call_id=chain, limit=1000), timeout=10
            )
        return len(reply.deliveries)

    # --- the fake CRM ------------------------------------------------------------------------
    def fake(self, path: str, body: dict[str, Any] | None = None) -> Any:
        reply = httpx.post(f"{self.crm_url}{path}", json=body or {}, timeout=30)
        reply.raise_for_status()
        return reply.json()

    def calls(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.crm_url}/fake/calls", timeout=10).json()["calls"])

    def methods(self) -> list[str]:
        return [c["method"] for c in self.calls()]

    def state(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.crm_url}/fake/state", timeout=10).json())

    def wait(self, condition: Callable[[], bool], timeout: float = 60.0, what: str = "the CRM") -> None:
        try:
            wait_until(condition, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; CRM calls: {self.methods()}\n{self.logs()}") from None


@contextlib.contextmanager
def crm_stack(
    folder: Path,
    fake: str,
    fake_args: tuple[str, ...],
    crm: Callable[[str], dict[str, Any]],
    name: str = "",
    **sections: dict[str, Any],
) -> Iterator[CrmStack]:
    """The stack with `tcxhooks fakecrm <fake> *fake_args` and one `[crm:<name>]` section (`name`: `fake`
    unless given), `crm(fake CRM's url)`."""
    sim = start_simulator(folder, CLIENT_ID, CLIENT_SECRET)
    crm_port = free_port()
    crm_url = f"http://127.0.0.1:{crm_port}"
    config = write_config(
        folder,
        pbx=sim.pbx(ringing_grace="1", reconcile="false", recover_outages="false"),
        events={"language": "en"},
        recordings={"grace": "1"},
        **{"dispatcher": {"retry_schedule": "1s,2s,5s,10s"}, **sections, f"crm:{name or fake}": crm(crm_url)},
    )
    parser = read_config(config)  # the listener's port: one no other server of the stack was given
    taken = {
        sim.port,
        crm_port,
        int(parser["metrics"]["port"]),
        int(parser["recordings"]["listen"].rsplit(":")[1]),
        *(int(address.rsplit(":")[1]) for address in parser["services"].values() if address.count(":") == 1),
    }
    listener_port = free_port()
    while listener_port in taken:
        listener_port = free_port()
    listener_url = f"http://127.0.0.1:{listener_port}"
    parser["dispatcher"].update({"listen": f"127.0.0.1:{listener_port}", "public_url": listener_url})
    with open(config, "w", encoding="utf-8") as handle:
        parser.write(handle)
    procs = [sim.proc, start(["fakecrm", fake, "--port", str(crm_port), *fake_args], folder / "crm.log")]
    stack = CrmStack(folder, config, sim.url, crm_url, listener_url)
    try:
        sim.wait_ready()
        wait_http(f"{crm_url}/fake/calls", proc=procs[1])
        for name in SERVICES:
            stack.start(name)
        yield stack
    finally:
        for proc in stack.procs.values():
            stop(proc)
        for proc in procs:
            stop(proc)


@contextlib.contextmanager
def bitrix_stack(
    folder: Path, portal_args: tuple[str, ...] = (), crm: dict[str, Any] | None = None, **sections: dict[str, Any]
) -> Iterator[CrmStack]:
    """The stack with the fake Bitrix24 portal, the application installed."""

    def section(portal_url: str) -> dict[str, Any]:
        return {
            "type": "bitrix24",
            "url": portal_url,
            "client_id": PORTAL_CLIENT_ID,
            "client_secret": PORTAL_SECRET,
            "oauth_url": f"{portal_url}/oauth/token/",
            "default_user": "1",
            "click_to_call": "true",
            **(crm or {}),
        }

    with crm_stack(folder, "bitrix24", portal_args, section, "b24", **sections) as stack:
        installed = stack.fake("/fake/install", {"url": f"{stack.listener_url}/crm/b24/install"})
        assert installed["status"] == 200, installed
        yield stack
