"""Traces that are not traces, or hold records that cannot be applied: a clear error or a named skip."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from tcxhooks.monitor.capture.replay import replay
from tcxhooks.monitor.capture.trace import TraceError, parse
from tests.helpers.services import tcxhooks_command

from .support import DATA

HEADER = (DATA / "inbound_answered.jsonl").read_text(encoding="utf-8").splitlines()[0]


@pytest.mark.parametrize(
    "lines, message",
    [
        ([], "not a trace header"),
        (['{"t": 1, "kind": "frame", "text": "x"}'], "not a trace header"),
        ([HEADER.replace('"version":1', '"version":99')], "trace version 99"),
        ([HEADER, "{not json"], "line 2: not JSON"),
        ([HEADER, '{"kind": "frame"}'], "line 2: no time"),
        ([HEADER, '{"t": 1e999, "kind": "frame"}'], "line 2: no time"),
        ([HEADER, '{"t": 5, "kind": "party"}'], "line 2: unknown kind 'party'"),
        ([HEADER, "[1, 2]"], "line 2: not a JSON object"),
    ],
)
def test_what_is_not_a_trace_is_named(lines: list[str], message: str) -> None:
    with pytest.raises(TraceError, match=message):
        parse(lines)


def test_records_that_cannot_be_applied_are_skipped_and_named() -> None:
    lines = (DATA / "inbound_answered.jsonl").read_text(encoding="utf-8").splitlines()
    t = json.loads(lines[1])["t"]
    broken = [
        lines[0],
        json.dumps({"t": t, "kind": "snapshot", "reason": "gap", "body": {"not": "a list"}}),
        json.dumps({"t": t, "kind": "upsert", "entity": "/callcontrol/101/participants/7", "body": {"id": 7}}),
        json.dumps({"t": t, "kind": "upsert", "entity": "/callcontrol/101/participants/8", "body": None}),
        *lines[1:],
    ]
    result = asyncio.run(replay(parse(broken)))
    assert [s.split(":")[0] for s in result.skipped] == ["line 2 (snapshot)", "line 3 (upsert)", "line 4 (upsert)"]
    assert len(result.events) == 3  # the call itself still replays


def test_the_command_exits_2_on_a_file_that_is_not_a_trace(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("a,b\n1,2\n")
    result = subprocess.run(tcxhooks_command("replay", str(path)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "line 1: not JSON" in result.stderr and not result.stdout
    missing = subprocess.run(
        tcxhooks_command("replay", str(tmp_path / "nope.jsonl")), capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr
