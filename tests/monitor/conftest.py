"""Monitor fixtures: the simulator, the real dispatcher and the monitor as processes, a fake CRM."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.receiver import Receiver
from tests.helpers.net import free_port
from tests.helpers.services import (
    Simulator,
    kill9,
    read_config,
    start,
    start_simulator,
    stop,
    wait_healthy,
    write_config,
)

CLIENT_ID = "crmhooks"
CLIENT_SECRET = "monitor-test-secret"


@dataclass
class Pbx:
    sim: Simulator
    folder: Path

    @property
    def url(self) -> str:
        return self.sim.url

    def play(self, scenario: str, drop_ws_after: list[int] | None = None, **params: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"scenario": scenario, "params": params}
        if drop_ws_after:
            body["drop_ws_after"] = drop_ws_after
        reply = httpx.post(f"{self.url}/sim/play", json=body, timeout=10)
        reply.raise_for_status()
        return dict(reply.json())

    def call(self, number: int) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/sim/calls/{number}", timeout=10).json())

    def wait_done(self, number: int, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.call(number)
            if state.get("done"):
                return state
            time.sleep(0.1)
        raise AssertionError(f"scenario of call {number} did not finish")

    def drop(self) -> None:
        httpx.post(f"{self.url}/sim/ws/drop", timeout=10).raise_for_status()

    def section(self, **settings: object) -> dict[str, object]:
        """A `[pbx]` config section that signs in to this simulator: 1 s ringing grace, UTC, then `settings`."""
        return self.sim.pbx(**{"ringing_grace": "1", "timezone": "UTC", **settings})


@dataclass
class Monitor:
    pbx: Pbx
    crm: Receiver
    config: Path
    folder: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)

    def start(self, name: str, **env: str) -> None:
        self.metrics[name] = free_port()
        self.procs[name] = start(
            [name, "-c", str(self.config)],
            self.folder / f"{name}.log",
            env={"TCXH_METRICS_PORT": str(self.metrics[name]), **env},
        )
        wait_healthy(read_config(self.config)["services"][name], timeout=60)

    def metric(self, name: str, service: str = "monitor") -> float:
        """Sum of every sample of metric `name` (any labels) on the service's /metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics[service]}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    def kill9(self, name: str) -> None:
        kill9(self.procs.pop(name))

    def address(self, name: str) -> str:
        return read_config(self.config)["services"][name]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-6000:] for p in sorted(self.folder.glob("*.log")))

    def bodies(self, count: int, timeout: float = 30) -> list[list[tuple[str, str]]]:
        try:
            hooks = self.crm.wait_for_sync(count, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None
        return [h.form_items() for h in hooks]


def start_pbx(folder: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Pbx]:
    sim = start_simulator(folder, CLIENT_ID, CLIENT_SECRET, *extra)
    try:
        sim.wait_ready()
    except AssertionError:
        stop(sim.proc)
        raise
    return sim.proc, Pbx(sim, folder)


@pytest.fixture
def monitor_stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Monitor]:
    """Simulator + dispatcher + monitor; `@pytest.mark.parametrize("monitor_stack", [{...}], indirect=True)`
    passes extra ini sections (e.g. {"events": {"ringing_stopped": "true"}}) and "sim_args" for the simulator."""
    extra: dict[str, Any] = dict(getattr(request, "param", {}) or {})
    sim, pbx = start_pbx(tmp_path, *extra.pop("sim_args", []))
    crm = Receiver().start()
    sections: dict[str, dict[str, Any]] = {
        "pbx": pbx.section(),
        "events": {"language": "en"},
        "webhook": {"url": crm.url},
        "recordings": {"enabled": "false"},
        "dispatcher": {"retry_schedule": "1s"},
    }
    for name, values in extra.items():
        sections.setdefault(name, {}).update(values)
    config = write_config(tmp_path, **sections)
    stack = Monitor(pbx, crm, config, tmp_path)
    try:
        stack.start("dispatcher")
        stack.start("monitor")
        yield stack
    finally:
        for proc in stack.procs.values():
            stop(proc)
        stop(sim)
        crm.stop()
