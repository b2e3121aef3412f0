"""The traces under tests/data/traces/: one per simulator scenario and per real-V20 variant, captured live;
replayed through the call graph they give exactly the webhooks the CRM received in that live run
(tests/capture/record.py writes them)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tcxhooks.dispatcher.payloads import render, validate
from tcxhooks.monitor.capture.replay import replay
from tcxhooks.monitor.capture.trace import read
from tcxhooks.simulator import scenarios
from tcxhooks.v1 import events_pb2

from .support import DATA, assert_same_webhooks, replay_bodies

TRACES = sorted(DATA.glob("*.jsonl"))


def replayed(path: Path, fmt: str = "form") -> list[str]:
    """The webhooks a default endpoint gets: the opt-in call.dialing left out."""
    result = asyncio.run(replay(read(path)))
    assert not result.skipped
    bodies = []
    for item in result.events:
        validate(item.event)
        if item.event.call.type == events_pb2.CALL_EVENT_TYPE_DIALING:
            continue
        bodies.append(render(item.event, fmt).decode())
    return bodies


def recorded(path: Path) -> list[str]:
    return [line for line in path.with_suffix(".webhooks").read_text(encoding="utf-8").splitlines() if line]


def test_every_scenario_and_variant_has_a_trace() -> None:
    from .record import MONITORED_TRUNK, VARIANTS

    missing = {*scenarios.names(), *VARIANTS, *MONITORED_TRUNK} - {p.stem for p in TRACES}
    assert not missing, f"capture them: python -m tests.capture.record {' '.join(sorted(missing))}"


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_replay_gives_the_webhooks_of_the_live_run(path: Path) -> None:
    assert_same_webhooks(replayed(path), recorded(path))


def test_the_command_prints_form_and_json_bodies() -> None:
    path = DATA / "attended_transfer.jsonl"
    assert_same_webhooks(replay_bodies(path), recorded(path))
    forms, jsons = replay_bodies(path), [json.loads(line) for line in replay_bodies(path, "json")]
    assert len(jsons) == len(forms) and jsons[0]["type"] == "call.ringing"
    assert [j["data"]["id"] for j in jsons] == [dict(p.split("=", 1) for p in f.split("&"))["id"] for f in forms]
