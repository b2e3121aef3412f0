"""Fixtures of the deployment tests: repository paths, and the real services running as processes.

`live` starts dispatcher, media and analytics (and the monitor against `tcxhooks sim`, when the
simulator command exists) once for this folder (stopped before other folders' tests run), so the Dockerfile's HEALTHCHECK and the dashboards'
queries are checked against what the product really serves.
"""

from __future__ import annotations

import importlib.util
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.fakes.receiver import Receiver
from tests.helpers.net import free_port
from tests.helpers.services import read_config, start, start_simulator, stop, wait_healthy, write_config

ROOT = Path(__file__).resolve().parents[2]
SIM_CLIENT_ID = "crmhooks"
SIM_CLIENT_SECRET = "deploy-tests-client-secret"


@dataclass
class Live:
    """Services started by the `live` fixture: their config and metrics ports."""

    config: Path
    metrics: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def scrape(self, service: str) -> str:
        reply = httpx.get(f"http://127.0.0.1:{self.metrics[service]}/metrics", timeout=10)
        reply.raise_for_status()
        return reply.text


def simulator_available() -> bool:
    return importlib.util.find_spec("tcxhooks.simulator.__main__") is not None


def _wait_ready(name: str, address: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready in {timeout}s"
            raise AssertionError(f"{name} {state}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            wait_healthy(address, timeout=1)
            return
        except AssertionError:
            continue


@pytest.fixture(scope="package")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("deploy-live")
    crm = Receiver().start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sections: dict[str, dict[str, object]] = {"webhook": {"url": crm.url}}
        names = ["dispatcher", "media", "analytics"]
        if simulator_available():
            sim = start_simulator(folder, SIM_CLIENT_ID, SIM_CLIENT_SECRET)
            procs.append(sim.proc)
            sim.wait_ready()
            sections["pbx"] = sim.pbx()
            names.append("monitor")
        config = write_config(folder, **sections)
        live = Live(config)
        if "monitor" not in names:
            live.skipped["monitor"] = "`tcxhooks sim` is not in the tree, and the monitor needs a PBX"
        services = read_config(config)["services"]
        started: dict[str, subprocess.Popen[bytes]] = {}
        for name in names:
            port = free_port()
            live.metrics[name] = port
            started[name] = start(
                [name, "-c", str(config)], folder / f"{name}.log", env={"TCXH_METRICS_PORT": str(port)}
            )
            procs.append(started[name])
        for name in names:
            _wait_ready(name, services[name], started[name], folder / f"{name}.log")
        yield live
    finally:
        for proc in reversed(procs):
            stop(proc)
        crm.stop()
