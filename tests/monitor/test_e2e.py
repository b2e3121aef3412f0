"""Scenario 1 of docs/webhooks.md §6 through real processes: simulator → monitor → dispatcher → CRM."""

from __future__ import annotations

import re
import time

from tests.helpers.contract import legacy

from .conftest import Monitor

CALLER, DID = "79161234567", "74951234567"


def test_inbound_answered_exact_bodies(monitor_stack: Monitor) -> None:
    started = time.time()
    played = monitor_stack.pbx.play("inbound_answered", ring_seconds=1, talk_seconds=2)
    ringing, answered, ended = (legacy(body) for body in monitor_stack.bodies(3))  # the legacy fields, exactly
    prefix = dict(ringing)["id"].rsplit("-", 1)[0]
    stamp, number = prefix.split("_")
    assert number == str(played["call_number"])
    assert re.fullmatch(r"\d{12}", stamp)
    seen = time.mktime(time.strptime(stamp, "%y%m%d%H%M%S")) - time.timezone  # the ids are in UTC here
    assert started - 2 <= seen <= started + 5
    assert ringing == [
        ("event", "ringing"),
        ("callerid", CALLER),
        ("did", DID),
        ("user", "101"),
        ("usertype", "ext"),
        ("id", f"{prefix}-0"),
    ]
    assert answered == [
        ("event", "hangupincoming"),
        ("callerid", CALLER),
        ("user", "101"),
        ("did", DID),
        ("trtype", "NotDef"),
        ("id", f"{prefix}-1"),
    ]
    assert ended == [
        ("event", "incoming"),
        ("callerid", CALLER),
        ("user", "101"),
        ("did", DID),
        ("finishtype", "Ok"),
        ("transfer", "false"),
        ("title", "Main line: talk 0:00:02"),
        ("id", f"{prefix}-1"),
        ("duration", "2"),
        ("ringtime", "1"),
        ("didname", "Main line"),
    ]
