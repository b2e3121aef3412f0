"""The webhook contract's call-event fields as receivers see them (docs/webhooks.md §3): the legacy module's
fields first, exactly, then the contract's extras in their order, each only when it has a value.

    assert legacy(hook.form_items()) == [("event", "ringing"), ("callerid", ...), ...]
"""

from __future__ import annotations

EXTRAS = (
    "event_at",
    "started_at",
    "answered_at",
    "ended_at",
    "caller_name",
    "user_name",
    "queue",
    "queue_name",
    "group",
    "group_name",
    "transferred_to",
    "transferred_to_name",
    "transferred_from",
    "transferred_from_name",
)


def legacy(body: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The legacy fields of a call event's form body, after checking that only the extras follow them, in
    order, `event_at` (every call event has it) among them."""
    cut = next((i for i, (k, _) in enumerate(body) if k in EXTRAS), len(body))
    extras = [k for k, _ in body[cut:]]
    assert extras == [k for k in EXTRAS if k in extras], f"extras out of place: {body}"
    assert "event_at" in extras, f"no event_at: {body}"
    return body[:cut]
