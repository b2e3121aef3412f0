"""End-to-end fixtures: the 3CX simulator and `tcxhooks up` as real processes, a fake CRM."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.receiver import Receiver
from tests.helpers.services import read_config, start, start_simulator, stop, wait_healthy, write_config

CLIENT_ID = "crmhooks"
CLIENT_SECRET = "e2e-client-secret-value"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SERVICE_TOKEN = "e2e-service-token-value"


@dataclass
class Stack:
    sim_url: str
    crm: Receiver
    config: Path
    folder: Path

    def play(self, scenario: str, **params: object) -> dict[str, object]:
        reply = httpx.post(f"{self.sim_url}/sim/play", json={"scenario": scenario, "params": params}, timeout=10)
        reply.raise_for_status()
        return dict(reply.json())

    def address(self, service: str) -> str:
        return read_config(self.config)["services"][service]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in self.folder.glob("*.log"))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    sim = start_simulator(tmp_path, CLIENT_ID, CLIENT_SECRET)
    crm = Receiver().start()
    config = write_config(
        tmp_path,
        pbx=sim.pbx(ringing_grace="1"),
        events={"language": "en"},
        webhook={"url": crm.url, "secret": WEBHOOK_SECRET},
        recordings={"grace": "2"},
        services={"token": SERVICE_TOKEN},
    )
    up = None
    try:
        sim.wait_ready()
        up = start(["up", "-c", str(config)], tmp_path / "up.log")
        for service in ("dispatcher", "media", "analytics", "monitor"):
            wait_healthy(read_config(config)["services"][service], timeout=60)
        yield Stack(sim.url, crm, config, tmp_path)
    finally:
        if up is not None:
            assert stop(up) == 0, "tcxhooks up did not stop cleanly"
        stop(sim.proc)
        crm.stop()
