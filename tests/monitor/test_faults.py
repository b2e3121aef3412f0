"""Garbage from the PBX is counted and logged, never fatal: malformed frames, unknown entities, bad sequences,
failing GETs. The call that follows still gives exactly the right webhooks."""

from __future__ import annotations

import json

import httpx

from .conftest import Monitor
from .expected import PARAMS, check


def inject(monitor: Monitor, **body: object) -> None:
    httpx.post(f"{monitor.pbx.url}/sim/ws/inject", json=body, timeout=5).raise_for_status()


def test_garbage_is_counted_and_the_next_call_is_exact(monitor_stack: Monitor) -> None:
    before = monitor_stack.metric("tcxhooks_monitor_malformed_messages_total")
    for raw in ("not json", "[1,2]", '{"sequence": 1}', '{"event": {"event_type": "x", "entity": 5}}', "{" * 10000):
        inject(monitor_stack, raw=raw)
    inject(monitor_stack, event_type=7, entity="/callcontrol/101/participants/1")
    inject(monitor_stack, event_type=0, entity="/callcontrol/101/queues/9")
    inject(monitor_stack, event_type=1, entity="/callcontrol/101/participants/424242")  # never seen
    inject(monitor_stack, event_type=0, entity="/callcontrol/101/participants/424242")  # 404 → gone
    inject(monitor_stack, event_type=0, entity="/callcontrol/101/participants/1", sequence=1)  # out of order
    inject(
        monitor_stack,
        event_type=0,
        entity="/callcontrol/101/participants/1",
        attached_data={"id": 1, "dn": "101", "status": "Exploded", "callid": 1},
    )
    httpx.post(
        f"{monitor_stack.pbx.url}/sim/fail",
        json={"prefix": "/callcontrol/101/participants", "status": 503, "count": 2},
        timeout=5,
    ).raise_for_status()
    number = monitor_stack.pbx.play("inbound_answered", **PARAMS)["call_number"]
    bodies = monitor_stack.bodies(3)
    check("inbound_answered", dict(bodies[0])["id"].rsplit("-", 1)[0], bodies)
    assert f"_{number}-" in dict(bodies[0])["id"]
    assert monitor_stack.metric("tcxhooks_monitor_malformed_messages_total") >= before + 9
    assert monitor_stack.procs["monitor"].poll() is None


def test_text_the_pbx_cannot_encode_is_replaced_and_no_call_stalls(monitor_stack: Monitor) -> None:
    """A lone surrogate (`\\ud800`) in a caller's number and name: the call is reported with U+FFFD in its place,
    another call at the same time is untouched, and the Call Control socket is never reopened over it."""
    odd = {
        "scenario": "inbound_answered",
        "params": {**PARAMS, "caller": "7916\ud800", "caller_name": "\ud800 Ivan"},
        "record": False,
    }
    reply = httpx.post(
        f"{monitor_stack.pbx.url}/sim/play",
        content=json.dumps(odd),  # ensure_ascii: a \\ud800 escape
        headers={"content-type": "application/json"},
        timeout=10,
    )
    reply.raise_for_status()
    numbers = {
        reply.json()["call_number"]: "7916\ufffd",
        monitor_stack.pbx.play("inbound_answered", **PARAMS, caller="79160000001")["call_number"]: "79160000001",
    }
    bodies = monitor_stack.bodies(6)
    for number, caller in numbers.items():
        got = [b for b in bodies if f"_{number}-" in dict(b)["id"]]
        check("inbound_answered", dict(got[0])["id"].rsplit("-", 1)[0], got, caller=caller)
    assert monitor_stack.metric('tcxhooks_monitor_ws_reconnects_total{outcome="connected"}') == 1
