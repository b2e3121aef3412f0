"""Whose callback the queue report counts (docs/3cx.md §4.3): two callers wait in queue 800 at the same time and
one orders a callback; simulator → monitor → dispatcher → CRM, as a user sees the webhooks."""
from __future__ import annotations

from pathlib import Path

from .table import played

FIRST, SECOND = "79161110001", "79162220002"


def ended_body(bodies: list[list[tuple[str, str]]]) -> dict[str, str]:
    ends = [dict(b) for b in bodies if dict(b)["event"] == "incoming"]
    assert len(ends) == 1, bodies
    return ends[0]


def test_the_caller_who_stayed_on_gets_no_callback_the_one_who_ordered_gets_it(tmp_path: Path) -> None:
    # Both wait at once; the first orders a callback after 2 s and leaves; the second hangs up 6 s later.
    rows = {"ordered": ("queue_abandoned_callback", {"wait_seconds": 2, "caller": FIRST, "ring_seconds": 1}),
            "stayed": ("queue_abandoned", {"wait_seconds": 8, "caller": SECOND, "ring_seconds": 1})}
    with played(tmp_path, rows) as run:
        ordered, stayed = (ended_body(run.call(row)[1]) for row in ("ordered", "stayed"))
    assert (ordered["callback"], ordered["user"], ordered["finishtype"]) == ("true", "800", "Missed")
    assert "queue 800, callback ordered" in ordered["title"]
    assert (stayed["callback"], stayed["user"], stayed["finishtype"]) == ("false", "800", "Missed")
    assert "queue 800, no callback" in stayed["title"]


def test_a_callback_counted_as_two_callers_leave_together_is_unknown_for_both(tmp_path: Path) -> None:
    rows = {"ordered": ("queue_abandoned_callback", {"wait_seconds": 3, "caller": FIRST, "ring_seconds": 1}),
            "left": ("queue_abandoned", {"wait_seconds": 3, "caller": SECOND, "ring_seconds": 1})}
    with played(tmp_path, rows) as run:
        bodies = [ended_body(run.call(row)[1]) for row in ("ordered", "left")]
    for body in bodies:
        assert "queue 800, callback unknown" in body["title"], body
        assert body["callback"] != "true", body
