"""--anonymize: no original phone number, name, e-mail or host of the simulator survives in any trace, the same
original always gets the same fake, DN numbers and types stay, and the anonymized trace replays the same."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from tcxhooks.dispatcher.payloads import render
from tcxhooks.monitor.capture.anonymize import Anonymizer
from tcxhooks.monitor.capture.recorder import encode
from tcxhooks.monitor.capture.replay import replay
from tcxhooks.monitor.capture.trace import parse
from tcxhooks.simulator.scenarios import Params
from tcxhooks.simulator.server import directory_for
from tcxhooks.simulator.state import DEFAULT_DNS, DID_RULE_NAME, TRUNK_DID

from .test_traces import TRACES

DIRECTORY = directory_for(DEFAULT_DNS)
NUMBERS = {Params().caller, Params().callee, TRUNK_DID, *(str(int(Params().caller) + i) for i in range(1, 3))}
NAMES = (
    {dn.name for dn in DEFAULT_DNS}
    | {u.first_name for u in DIRECTORY.users.values()}
    | {u.last_name for u in DIRECTORY.users.values()}
    | {DID_RULE_NAME, "Main trunk", "SIP provider"}
)
EMAILS = {u.email for u in DIRECTORY.users.values()}
HOSTS = {"127.0.0.1", "sip.example.net"}
# the webhook fields an anonymized trace gives fakes in (numbers and names; a DN number stays)
MASKED = (
    "callerid",
    "did",
    "didname",
    "title",
    "caller_name",
    "user_name",
    "queue_name",
    "group_name",
    "transferred_to",
    "transferred_to_name",
    "transferred_from",
    "transferred_from_name",
)


def anonymized(path: Path) -> list[str]:
    anonymizer = Anonymizer()
    return [encode(anonymizer.record(json.loads(line))) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_nothing_original_survives(path: Path) -> None:
    raw, text = path.read_text(encoding="utf-8"), "\n".join(anonymized(path))
    originals = {o for o in NUMBERS | NAMES | EMAILS | HOSTS if o in raw}
    assert originals & NUMBERS and originals & NAMES  # the trace had them to lose
    assert not {o for o in originals if o in text}


def _dns_and_types(lines: list[str]) -> list[tuple[str, str]]:
    out = []
    for record in map(json.loads, lines):
        if record["kind"] == "upsert":
            body = record["body"]
            out.append((body["dn"], body["party_dn"], body["party_dn_type"], body["status"], record["entity"]))
    return out


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_dns_types_and_the_webhooks_stay_the_same_and_fakes_are_consistent(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    fake = anonymized(path)
    assert _dns_and_types(fake) == _dns_and_types(lines)

    def bodies(trace: list[str]) -> list[dict[str, str]]:
        return [
            dict(parse_qsl(render(r.event, "form").decode(), keep_blank_values=True))
            for r in asyncio.run(replay(parse(trace))).events
        ]

    real, masked = bodies(lines), bodies(fake)
    assert len(real) == len(masked)
    mapping: dict[str, str] = {}
    for a, b in zip(real, masked, strict=True):
        for key in MASKED:
            if a.get(key):
                assert mapping.setdefault(a[key], b[key]) == b[key]  # one fake per original
                assert b[key] != a[key] or key == "title" or (a[key].isdigit() and len(a[key]) < 5)  # DNs stay
        assert {k: v for k, v in a.items() if k not in MASKED} == {k: v for k, v in b.items() if k not in MASKED}
    assert len(set(mapping.values())) == len(mapping)


def test_free_text_urls_devices_and_learnt_names() -> None:
    anonymizer = Anonymizer()
    anonymizer.learn_names(["Olga Ivanova"])
    record = {
        "t": 1.0,
        "kind": "xapi",
        "path": "/xapi/v1/ReportCallLogData/x",
        "params": {},
        "body": {
            "value": [
                {
                    "Reason": "Ended by Olga Ivanova",
                    "Comment": "Olga Ivanova called +7 916 from olga@corp.ru at 2026-12-06T18:45:00.1234567Z",
                    "CallHistoryId": "0000123456",
                    "@odata.context": "https://pbx.corp.ru:5001/xapi/v1/$metadata#X",
                    "Mobile": "+79261112233",
                }
            ]
        },
    }
    row = anonymizer.record(record)["body"]["value"][0]
    assert row["Reason"] == "" and "Olga" not in row["Comment"] and "Ivanova" not in row["Comment"]
    assert "olga@corp.ru" not in row["Comment"] and "2026-12-06T18:45:00.1234567Z" in row["Comment"]
    assert row["@odata.context"].startswith("https://host") and "corp" not in row["@odata.context"]
    assert row["Mobile"].startswith("+555") and len(row["Mobile"]) == len("+79261112233")
    assert row["CallHistoryId"] == "0000123456"
    device = anonymizer.record(
        {
            "t": 2.0,
            "kind": "upsert",
            "entity": "/callcontrol/101/participants/5",
            "body": {
                "id": 5,
                "dn": "101",
                "device_id": "sip:101@10.1.2.3:5062;rinstance=abc",
                "party_caller_name": "79261112233",
                "party_caller_id": "79261112233",
            },
        }
    )["body"]
    assert device["device_id"].startswith("sip:101@host") and "10.1.2.3" not in device["device_id"]
    assert device["party_caller_name"] == device["party_caller_id"] == row["Mobile"].lstrip("+")
    assert encode(anonymizer.record({"t": 3.0, "kind": "frame", "text": "\ud800 not json 79261112233"}))
