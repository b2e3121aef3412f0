"""The simulator plays a trace as a scenario (`POST /sim/play {"trace": …}`, `tcxhooks sim --trace FILE`): the
monitor, watching it live, sends the CRM the same webhooks as in the run the trace was captured from."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tcxhooks.simulator.steps import Remove, Upsert, Wait
from tcxhooks.simulator.trace import TraceError, dns_of, records_of, script_of
from tests.helpers.net import free_port
from tests.helpers.services import start, start_simulator, stop

from .support import DATA, Stack, assert_same_webhooks, renumbered, start_stack, wait_quiet


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("player"))
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize(
    "scenario",
    [
        "attended_transfer",
        "transfer_to_external",
        "queue_overflow",
        "parallel_calls",
        "queue_answered@devices",
        "attended_transfer@caller_moves",
    ],
)
def test_a_played_trace_gives_the_webhooks_of_its_live_run(stack: Stack, scenario: str) -> None:
    crm = stack.monitor.crm
    wait_quiet(crm, quiet=0.5)
    before = len(crm.requests)
    text = (DATA / f"{scenario}.jsonl").read_text(encoding="utf-8")
    reply = httpx.post(f"{stack.monitor.pbx.url}/sim/play", json={"trace": text}, timeout=10)
    assert reply.status_code == 200, reply.text
    stack.monitor.pbx.wait_done(reply.json()["call_number"])
    wait_quiet(crm)
    got = [r.body.decode() for r in crm.requests[before:]]
    want = (DATA / f"{scenario}.webhooks").read_text(encoding="utf-8").splitlines()
    assert_same_webhooks(renumbered(got), renumbered(want), same_moments=False)


def test_what_cannot_be_played_is_refused(stack: Stack) -> None:
    header = (DATA / "inbound_answered.jsonl").read_text(encoding="utf-8").splitlines()[0]
    for body, message in (
        ({"trace": 5}, "'trace' must be"),
        ({"trace": "nonsense"}, "line 1 is not JSON"),
        ({"trace": header}, "no participant to play"),
    ):
        reply = httpx.post(f"{stack.monitor.pbx.url}/sim/play", json=body, timeout=10)
        assert reply.status_code == 400 and message in reply.json()["error"], reply.text
    other = _trace([("201", "Wextension")], [("201", 5, "Ringing")])
    reply = httpx.post(f"{stack.monitor.pbx.url}/sim/play", json={"trace": other}, timeout=10)
    assert reply.status_code == 400 and "DNs this PBX does not have: 201" in reply.json()["error"]


def _trace(dns: list[tuple[str, str]], changes: list[tuple[str, int, str]]) -> str:
    """A small trace: a snapshot of `dns`, then (dn, participant id, status or "gone") one second apart."""
    lines = [
        {"t": 100.0, "kind": "header", "version": 1, "facts": {"dn_types": dict(dns)}},
        {
            "t": 100.0,
            "kind": "snapshot",
            "reason": "capture",
            "body": [{"dn": dn, "type": kind, "participants": []} for dn, kind in dns],
        },
    ]
    for i, (dn, pid, status) in enumerate(changes, 1):
        entity = f"/callcontrol/{dn}/participants/{pid}"
        lines.append(
            {"t": 100.0 + i, "kind": "remove", "entity": entity, "reason": "removed"}
            if status == "gone"
            else {
                "t": 100.0 + i,
                "kind": "upsert",
                "entity": entity,
                "body": {
                    "id": pid,
                    "dn": dn,
                    "status": status,
                    "callid": 41,
                    "legid": 4,
                    "party_dn": "10007",
                    "party_dn_type": "Wexternalline",
                    "party_caller_id": "79161230000",
                    "device_id": "sip:x",
                },
            }
        )
    return "\n".join(json.dumps(line) for line in lines)


def test_a_trace_becomes_a_script_on_its_own_dns() -> None:
    records = records_of(
        _trace(
            [("201", "Wextension"), ("7000", "Wqueue")],
            [("201", 5, "Ringing"), ("201", 5, "Connected"), ("201", 5, "gone")],
        ).splitlines()
    )
    assert {(d.number, d.type, d.monitored) for d in dns_of(records)} >= {
        ("201", "Wextension", True),
        ("7000", "Wqueue", True),
    }
    script = script_of(records)
    assert script.calls == {"c41": "inbound"}
    kinds = [type(s).__name__ for s in script.steps]
    assert kinds == ["Wait", "Upsert", "Wait", "Upsert", "Wait", "Remove"]
    first = script.steps[1]
    assert isinstance(first, Upsert) and (first.leg, first.dn, first.call) == ("201/5", "201", "c41")
    assert first.fields["party_caller_id"] == "79161230000" and first.fields["device_id"] == "sip:x"
    assert "id" not in first.fields and "callid" not in first.fields
    assert all(s.seconds == 1.0 for s in script.steps if isinstance(s, Wait))
    assert isinstance(script.steps[-1], Remove)
    with pytest.raises(TraceError, match="not a trace header"):
        records_of(['{"t": 1, "kind": "upsert"}'])


def test_sim_plays_a_trace_file_given_at_start(tmp_path: Path) -> None:
    trace = tmp_path / "other.jsonl"
    trace.write_text(
        _trace([("201", "Wextension")], [("201", 5, "Ringing"), ("201", 5, "Connected"), ("201", 5, "gone")]),
        encoding="utf-8",
    )
    sim = start_simulator(tmp_path, "crmhooks", "s", "--trace", str(trace))
    try:
        sim.wait_ready()
        url = sim.url
        deadline = time.monotonic() + 30
        while not (calls := httpx.get(f"{url}/sim/calls", timeout=5).json()["calls"]) or not calls[0]["done"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert [(c["kind"], c["entity"].split("/")[2], c["status"]) for c in calls[0]["changes"]] == [
            ("U", "201", "Ringing"),
            ("U", "201", "Connected"),
            ("R", "201", ""),
        ]
        token = httpx.post(
            f"{url}/connect/token",
            data={"client_id": sim.client_id, "client_secret": sim.client_secret, "grant_type": "client_credentials"},
        ).json()["access_token"]
        dns = httpx.get(f"{url}/callcontrol", headers={"Authorization": f"Bearer {token}"}).json()
        assert [d["dn"] for d in dns if d["type"] == "Wextension"] == ["201"]
    finally:
        stop(sim.proc)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not a trace\n")
    result = start(["sim", "--port", str(free_port()), "--trace", str(bad)], tmp_path / "bad.log")
    assert result.wait(30) != 0 and "cannot play" in (tmp_path / "bad.log").read_text()
