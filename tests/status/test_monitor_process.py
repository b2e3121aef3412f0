"""Status events through the real processes: simulator → monitor → dispatcher → CRM receiver.

The other status tests drive the poller in-process; this one checks the monitor's own wiring (its
publish to the dispatcher, its retry while the dispatcher is away).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tcxhooks.v1 import monitor_service_pb2, monitor_service_pb2_grpc
from tests.fakes.receiver import Receiver
from tests.helpers.net import free_port
from tests.helpers.services import read_config, start, stop, wait_healthy, wait_until

from .conftest import Sim, status_config


class Processes:
    def __init__(self, config: Path, folder: Path) -> None:
        self.config, self.folder = config, folder
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        self.procs[name] = start(
            [name, "-c", str(self.config)], self.folder / f"{name}.log", env={"TCXH_METRICS_PORT": str(free_port())}
        )
        wait_healthy(read_config(self.config)["services"][name], timeout=60)

    def stop(self, name: str) -> None:
        assert stop(self.procs.pop(name)) == 0, self.logs()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.folder.glob("*.log")))

    def extensions(self) -> dict[str, str]:
        """Extension → forwarding profile, as the monitor's gRPC API shows its status baseline."""
        with grpc.insecure_channel(read_config(self.config)["services"]["monitor"]) as channel:
            reply = monitor_service_pb2_grpc.MonitorServiceStub(channel).ListExtensions(
                monitor_service_pb2.ListExtensionsRequest(), timeout=5
            )
        return {e.number: e.profile for e in reply.extensions}


@pytest.fixture
def processes(tmp_path: Path, sim: Sim) -> Iterator[tuple[Processes, Receiver]]:
    crm = Receiver().start()
    config = status_config(tmp_path, sim, webhook={"url": crm.url, "format": "form"}, recordings={"enabled": "false"})
    running = Processes(config, tmp_path)
    try:
        running.start("dispatcher")
        running.start("monitor")
        yield running, crm
    finally:
        for proc in running.procs.values():
            stop(proc)
        crm.stop()


def test_forwarding_changes_reach_the_crm_from_the_monitor_process(
    processes: tuple[Processes, Receiver], sim: Sim
) -> None:
    running, crm = processes
    # the first complete view is the silent baseline: a change before it would never be reported
    wait_until(lambda: running.extensions().get("101") == "Available", timeout=30, what="the status baseline")
    sim.do("POST", "/profile", {"number": "101", "profile": "Out of office"})
    hooks = crm.wait_exactly_sync(1, timeout=30)
    assert hooks[0].form_items() == [
        ("event", "forwarding"),
        ("user", "101"),
        ("name", "Ivan Petrov"),
        ("status", "Out of office"),
        ("previous", "Available"),
    ], running.logs()

    # the dispatcher is away when the next change is polled: the monitor keeps the event and sends it once
    running.stop("dispatcher")
    sim.do("POST", "/profile", {"number": "101", "profile": "Available"})
    wait_until(lambda: running.extensions().get("101") == "Available", timeout=30, what="the change polled")
    running.start("dispatcher")
    hooks = crm.wait_exactly_sync(2, timeout=30)
    assert hooks[1].form_items() == [
        ("event", "forwarding"),
        ("user", "101"),
        ("name", "Ivan Petrov"),
        ("status", "Available"),
        ("previous", "Out of office"),
    ], running.logs()
