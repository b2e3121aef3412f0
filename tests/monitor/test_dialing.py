"""call.dialing (form `dialing`): an outbound leg starting, before it is answered, at link 0; with makecall once the
user picked up their own phone and the PBX dials out. Opt-in: only an endpoint whose `events` name it gets it.
Simulator → monitor → dispatcher → two CRM endpoints (the default one and one that asks for dialing)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.receiver import Receiver
from tests.helpers.contract import legacy
from tests.helpers.services import stop, write_config

from .conftest import Monitor, start_pbx

FAST = {"ring_seconds": 1, "talk_seconds": 2, "wait_seconds": 1}
CALLEE = "79031112233"
ROWS = {
    "answered": ("outbound_answered", {}),
    "unanswered": ("outbound_unanswered", {}),
    "makecall": ("outbound_answered", {"makecall": True}),
    "inbound": ("inbound_answered", {}),
    "internal": ("internal_call", {}),
}
# Each call's webhooks at the default endpoint (the same as without call.dialing) and at the one that asks for it.
DEFAULT = {
    "answered": ["hangupoutgoing", "outgoing"],
    "unanswered": ["outgoing"],
    "makecall": ["hangupoutgoing", "outgoing"],
    "inbound": ["ringing", "hangupincoming", "incoming"],
    "internal": [],
}


@dataclass
class Run:
    numbers: dict[str, int]
    default: Receiver
    dialing: Receiver

    def bodies(self, crm: Receiver, row: str) -> list[dict[str, str]]:
        return [r.form() for r in crm.requests if r.form()["id"].rsplit("-", 1)[0].endswith(f"_{self.numbers[row]}")]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder: Path = tmp_path_factory.mktemp("dialing")
    sim, pbx = start_pbx(folder)
    default, dialing = Receiver().start(), Receiver().start()
    config = write_config(
        folder,
        pbx=pbx.section(),
        events={"language": "en"},
        webhook={"url": default.url},
        recordings={"enabled": "false"},
        **{"webhook:dial": {"url": dialing.url, "events": "dialing, hangupoutgoing, outgoing"}},
    )
    monitor = Monitor(pbx, default, config, folder)
    try:
        monitor.start("dispatcher")
        monitor.start("monitor")
        numbers = {row: pbx.play(name, **{**FAST, **params})["call_number"] for row, (name, params) in ROWS.items()}
        for number in numbers.values():
            pbx.wait_done(number)
        default.wait_exactly_sync(sum(len(v) for v in DEFAULT.values()))
        dialing.wait_exactly_sync(3 + 5)  # a dialing per outbound call, and their ends and answers
        yield Run(numbers, default, dialing)
    finally:
        for proc in monitor.procs.values():
            stop(proc)
        stop(sim)
        default.stop()
        dialing.stop()


@pytest.mark.parametrize("row", sorted(ROWS))
def test_the_default_endpoint_gets_no_dialing(run: Run, row: str) -> None:
    assert [b["event"] for b in run.bodies(run.default, row)] == DEFAULT[row]


@pytest.mark.parametrize("row", ["answered", "unanswered", "makecall"])
def test_an_outbound_leg_starting_is_a_dialing_first_at_link_0(run: Run, row: str) -> None:
    bodies = run.bodies(run.dialing, row)
    assert [b["event"] for b in bodies] == ["dialing", *DEFAULT[row]]
    dialing = bodies[0]
    prefix = dialing["id"].rsplit("-", 1)[0]
    assert legacy(list(dialing.items())) == [
        ("event", "dialing"),
        ("callerid", CALLEE),
        ("user", "101"),
        ("did", ""),
        ("id", f"{prefix}-0"),
    ]
    assert (dialing["user_name"], "started_at" in dialing, "answered_at" in dialing) == ("Ivan Petrov", True, False)


@pytest.mark.parametrize("row", ["inbound", "internal"])
def test_no_dialing_for_calls_that_are_not_outbound(run: Run, row: str) -> None:
    assert run.bodies(run.dialing, row) == []
