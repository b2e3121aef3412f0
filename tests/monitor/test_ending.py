"""`call.ended` goes out as soon as the PBX has shown the call is over, not after `ringing_grace`: with a grace
far longer than the test waits, plain calls still end (and give exactly their webhooks)."""

from __future__ import annotations

import pytest

from .conftest import Monitor
from .expected import EXPECTED, PARAMS, check

OVER = ("inbound_answered", "caller_hangs_up_ringing", "outbound_answered", "outbound_unanswered", "queue_abandoned")


@pytest.mark.parametrize("monitor_stack", [{"pbx": {"ringing_grace": "120"}}], indirect=True)
def test_a_call_that_is_over_ends_without_waiting_the_grace(monitor_stack: Monitor) -> None:
    numbers = {scenario: monitor_stack.pbx.play(scenario, **PARAMS)["call_number"] for scenario in OVER}
    bodies = monitor_stack.bodies(sum(len(EXPECTED[s]) for s in OVER), timeout=60)  # a minute < the grace
    for scenario, number in numbers.items():
        got = [b for b in bodies if f"_{number}-" in dict(b)["id"]]
        check(scenario, dict(got[0])["id"].rsplit("-", 1)[0], got, outbound=scenario.startswith("outbound"))


def test_an_outbound_call_rings_for_its_dialling_time(monitor_stack: Monitor) -> None:
    """docs/webhooks.md §3: `ringtime` is the time before answer or give-up; for a call out, the dialling."""
    for scenario in ("outbound_answered", "outbound_unanswered"):
        monitor_stack.pbx.play(scenario, ring_seconds=3, talk_seconds=1)
    ended = [dict(b) for b in monitor_stack.bodies(3) if dict(b)["event"] == "outgoing"]
    assert sorted(e["finishtype"] for e in ended) == ["Missed", "Ok"]
    assert all(abs(int(e["ringtime"]) - 3) <= 1 for e in ended), ended
