"""Fixtures: the simulator as a real process, and a StatusPoller on a real store and PbxClient."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tcxhooks.monitor.pbx.client import PbxClient
from tcxhooks.monitor.status.diff import NAMES
from tcxhooks.monitor.status.poller import StatusPoller
from tcxhooks.platform.store import Store, open_store
from tcxhooks.v1 import events_pb2
from tests.helpers.config import ServiceConfig, service_config
from tests.helpers.services import Simulator, start_simulator, stop, write_config

CLIENT_ID = "statushooks"
CLIENT_SECRET = "status-test-secret"


@dataclass
class Sim:
    simulator: Simulator
    control: httpx.Client

    @property
    def url(self) -> str:
        return self.simulator.url

    def do(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        reply = self.control.request(method, f"/sim/directory{path}", json=body)
        assert reply.status_code == 200, reply.text
        return reply.json()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    simulator = start_simulator(tmp_path, CLIENT_ID, CLIENT_SECRET)
    simulator.wait_ready()
    control = httpx.Client(base_url=simulator.url, timeout=10)
    try:
        yield Sim(simulator, control)
    finally:
        control.close()
        stop(simulator.proc)


def status_config(tmp_path: Path, sim: Sim, **sections: dict[str, object]) -> Path:
    return write_config(
        tmp_path, pbx=sim.simulator.pbx(**{"poll_interval": "1", **sections.pop("pbx", {})}), **sections
    )


def monitor_config(path: Path) -> ServiceConfig:
    """The config a monitor started with `path` loads."""
    return service_config(str(path), "monitor")


@dataclass
class Harness:
    """One monitor's worth of status polling; `restart()` is a new process's view of the same store."""

    config: ServiceConfig
    publish: Callable[[events_pb2.Event], Awaitable[None]] | None = None
    page_size: int = 500
    published: list[events_pb2.Event] = field(default_factory=list)
    store: Store | None = None
    pbx: PbxClient | None = None
    poller: StatusPoller | None = None

    async def open(self) -> Harness:
        self.store = await open_store(self.config.store.url)
        self.pbx = PbxClient(self.config.pbx)
        self.poller = StatusPoller(self.pbx, self.store, self._publish, self.config.pbx, page_size=self.page_size)
        await self.poller.start()
        return self

    async def _publish(self, event: events_pb2.Event) -> None:
        if self.publish is not None:
            await self.publish(event)
        self.published.append(event)

    async def poll(self) -> list[events_pb2.Event]:
        assert self.poller is not None
        return await self.poller.poll()

    async def close(self) -> None:
        if self.pbx is not None:
            await self.pbx.aclose()
        if self.store is not None:
            await self.store.close()

    async def restart(self) -> Harness:
        await self.close()
        return await self.open()


@pytest.fixture
async def harness(tmp_path: Path, sim: Sim) -> AsyncIterator[Harness]:
    h = await Harness(monitor_config(status_config(tmp_path, sim))).open()
    try:
        yield h
    finally:
        await h.close()


def summary(events: list[events_pb2.Event]) -> list[tuple[str, ...]]:
    """(event, user, status, previous, queue) per event: what a CRM would read."""
    return [(NAMES[e.status.type], e.status.user, e.status.status, e.status.previous, e.status.queue) for e in events]
