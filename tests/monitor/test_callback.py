"""Whose callback the queue report counts (docs/3cx.md §4.3): two callers wait in queue 800 at the same time and
one orders a callback; simulator → monitor → dispatcher → CRM, as a user sees the webhooks."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from tcxhooks.monitor.callback import QueueExits, callback_state
from tcxhooks.v1 import common_pb2

from .table import played

FIRST, SECOND = "79161110001", "79162220002"


def ended_body(bodies: list[list[tuple[str, str]]]) -> dict[str, str]:
    ends = [dict(b) for b in bodies if dict(b)["event"] == "incoming"]
    assert len(ends) == 1, bodies
    return ends[0]


def test_the_caller_who_stayed_on_gets_no_callback_the_one_who_ordered_gets_it(tmp_path: Path) -> None:
    # Both wait at once; the first orders a callback after 2 s and leaves; the second hangs up 6 s later.
    rows = {
        "ordered": ("queue_abandoned_callback", {"wait_seconds": 2, "caller": FIRST, "ring_seconds": 1}),
        "stayed": ("queue_abandoned", {"wait_seconds": 8, "caller": SECOND, "ring_seconds": 1}),
    }
    with played(tmp_path, rows) as run:
        ordered, stayed = (ended_body(run.call(row)[1]) for row in ("ordered", "stayed"))
    assert (ordered["callback"], ordered["user"], ordered["finishtype"]) == ("true", "800", "Missed")
    assert "queue 800, callback ordered" in ordered["title"]
    assert (stayed["callback"], stayed["user"], stayed["finishtype"]) == ("false", "800", "Missed")
    assert "queue 800, no callback" in stayed["title"]


def test_a_callback_counted_as_two_callers_leave_together_is_unknown_for_both(tmp_path: Path) -> None:
    rows = {
        "ordered": ("queue_abandoned_callback", {"wait_seconds": 3, "caller": FIRST, "ring_seconds": 1}),
        "left": ("queue_abandoned", {"wait_seconds": 3, "caller": SECOND, "ring_seconds": 1}),
    }
    with played(tmp_path, rows) as run:
        bodies = [ended_body(run.call(row)[1]) for row in ("ordered", "left")]
    for body in bodies:
        assert "queue 800, callback unknown" in body["title"], body
        assert body["callback"] != "true", body


class _Report:
    """XAPI ReportQueueCallbacks of queue 800 as the PBX answers it: callbacks ordered in the asked
    period, which it reads in whole seconds."""

    def __init__(self, *ordered_at: float) -> None:
        self.ordered_at = ordered_at

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        start, end = (
            dt.datetime.strptime(
                re.search(rf"{name}=([^,)]+)", path).group(1),  # type: ignore[union-attr]
                "%Y-%m-%dT%H:%M:%SZ",
            )
            .replace(tzinfo=dt.UTC)
            .timestamp()
            for name in ("startDt", "endDt")
        )
        count = sum(1 for moment in self.ordered_at if start <= moment <= end)
        return {"value": [{"QueueDnNumber": "800", "CallbacksCount": count}]}


async def test_a_callback_ordered_by_a_caller_who_left_just_before_the_wait_is_not_this_callers() -> None:
    """The report's period starts at a whole second: a caller who ordered and left in the fraction of a second
    before this call's window is still a candidate, so this caller's count is not taken as its own."""
    left, waited = 1_000_000_100.9, 3.0  # the window starts at …95.9, the report's at …95
    exits = QueueExits()
    exits.record("800", "250101000000_1", 1_000_000_095.5)  # ordered at …95.3, left at …95.5
    exits.record("800", "250101000000_2", left)
    state = await callback_state(
        _Report(1_000_000_095.3),
        exits,
        "800",
        "250101000000_2-0",  # type: ignore[arg-type]
        left,
        waited,
    )
    assert state == common_pb2.CALLBACK_STATE_NOT_ORDERED
