"""The webhook bodies each simulator scenario must produce (docs/webhooks.md §3, §6), with ringingstopped enabled.

`EXPECTED[scenario]` lists (event, link, fields) in order; `bodies()` turns them into exact form items for
one call prefix. Talk/ring durations depend on the scenario's timings (PARAMS); they are compared to the
received values with one second of slack by `check()`, and the title must state the received duration.
"""

from __future__ import annotations

from typing import Any

from tests.helpers.contract import legacy

CALLER, DID, CALLEE = "79161234567", "74951234567", "79031112233"
PARAMS: dict[str, Any] = {"ring_seconds": 1, "talk_seconds": 2, "wait_seconds": 1}
RING, TALK = 1, 2

Step = tuple[str, int, dict[str, Any]]


def ringing(user: str, link: int, usertype: str = "ext") -> Step:
    return ("ringing", link, {"user": user, "usertype": usertype})


def stopped(user: str, link: int, reason: str) -> Step:
    return ("ringingstopped", link, {"user": user, "usertype": "ext", "reason": reason})


def answered(user: str, link: int, trtype: str = "NotDef", out: bool = False) -> Step:
    return ("hangupoutgoing" if out else "hangupincoming", link, {"user": user, "trtype": trtype})


def ended(
    user: str,
    link: int,
    finish: str = "Ok",
    transfer: bool = False,
    out: bool = False,
    duration: int = TALK,
    ring: int = RING,
    callback: bool | None = None,
    queue_missed: str = "",
) -> Step:
    return (
        "outgoing" if out else "incoming",
        link,
        {
            "user": user,
            "finishtype": finish,
            "transfer": transfer,
            "duration": duration if finish == "Ok" else 0,
            "ringtime": ring,
            "callback": callback,
            "queue_missed": queue_missed,
        },
    )


EXPECTED: dict[str, list[Step]] = {
    "inbound_answered": [ringing("101", 0), answered("101", 1), ended("101", 1)],
    "queue_answered": [
        ringing("800", 0, "queue"),
        ringing("101", 0),
        ringing("102", 0),
        stopped("101", 0, "answered_elsewhere"),
        answered("102", 1),
        ended("102", 1, callback=False),
    ],
    "queue_abandoned_callback": [
        ringing("800", 0, "queue"),
        ringing("101", 0),
        ringing("102", 0),
        ended("800", 0, "Missed", callback=True, queue_missed="800"),
    ],
    "queue_abandoned": [
        ringing("800", 0, "queue"),
        ringing("101", 0),
        ringing("102", 0),
        ended("800", 0, "Missed", callback=False, queue_missed="800"),
    ],
    "blind_transfer": [
        ringing("101", 0),
        answered("101", 1),
        ringing("102", 2),
        ended("101", 1, transfer=True),
        answered("102", 2, "Blind"),
        ended("102", 2),
    ],
    "attended_transfer": [
        ringing("101", 0),
        answered("101", 1),
        answered("102", 2, "Accomp"),
        ended("101", 1, transfer=True, duration=TALK + RING + TALK // 2),
        ended("102", 2, ring=RING),
    ],
    "outbound_answered": [answered("101", 1, out=True), ended("101", 1, out=True)],
    "outbound_unanswered": [ended("101", 0, "Missed", out=True)],
    "ring_group": [
        ringing("900", 0, "other"),
        ringing("101", 0),
        ringing("102", 0),
        ringing("103", 0),
        stopped("101", 0, "answered_elsewhere"),
        stopped("102", 0, "answered_elsewhere"),
        answered("103", 1),
        ended("103", 1),
    ],
    "ivr_to_queue": [
        ringing("700", 0, "other"),
        ringing("800", 0, "queue"),
        ringing("101", 0),
        ringing("102", 0),
        stopped("102", 0, "answered_elsewhere"),
        answered("101", 1),
        ended("101", 1, callback=False),
    ],
    "queue_overflow": [
        ringing("800", 0, "queue"),
        ringing("101", 0),
        stopped("101", 0, "moved_on"),
        ringing("801", 0, "queue"),
        ringing("103", 0),
        answered("103", 1),
        ended("103", 1, callback=False),
    ],
    "agent_rejects": [
        ringing("800", 0, "queue"),
        ringing("101", 0),
        stopped("101", 0, "moved_on"),
        ringing("102", 0),
        answered("102", 1),
        ended("102", 1, callback=False),
    ],
    "caller_hangs_up_ringing": [ringing("101", 0), ended("101", 0, "Missed")],
    "transfer_to_external": [ringing("101", 0), answered("101", 1), ended("101", 1, transfer=True)],
    "transfer_to_queue": [
        ringing("101", 0),
        answered("101", 1),
        ringing("800", 2, "queue"),
        ended("101", 1, transfer=True, callback=False),
        ringing("102", 2),
        ringing("103", 2),
        stopped("103", 2, "answered_elsewhere"),
        answered("102", 2, "Blind"),
        ended("102", 2, callback=False),
    ],
    "two_transfers": [
        ringing("101", 0),
        answered("101", 1),
        ringing("102", 2),
        ended("101", 1, transfer=True),
        answered("102", 2, "Blind"),
        ringing("103", 3),
        ended("102", 2, transfer=True),
        answered("103", 3, "Blind"),
        ended("103", 3),
    ],
    "mobile_reconnect": [ringing("101", 0), answered("101", 1), ended("101", 1)],
}


def hms(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def check(
    scenario: str,
    prefix: str,
    got: list[list[tuple[str, str]]],
    outbound: bool = False,
    timing: bool = True,
    caller: str = "",
) -> None:
    """Asserts the received form bodies of one call against EXPECTED[scenario] (exact, durations ±1 s).

    `timing=False` skips durations (a change seen only at a resync is timed when it was seen); `caller`: the
    external number when the call was played with another than the default."""
    want = EXPECTED[scenario]
    events = [dict(body).get("event") for body in got]
    assert events == [w[0] for w in want], f"{scenario}: {events}"
    caller = caller or (CALLEE if outbound else CALLER)
    for full, (event, link, fields) in zip(got, want, strict=True):
        body = legacy(full)
        values = dict(body)
        did = "" if outbound else DID
        user = fields["user"]
        if event in ("ringing", "ringingstopped"):
            expect = [
                ("event", event),
                ("callerid", caller),
                ("did", did),
                ("user", user),
                ("usertype", fields["usertype"]),
                ("id", f"{prefix}-{link}"),
            ]
            if event == "ringingstopped":
                expect.append(("reason", fields["reason"]))
            assert body == expect, f"{scenario}: {body} != {expect}"
        elif event in ("hangupincoming", "hangupoutgoing"):
            expect = [
                ("event", event),
                ("callerid", caller),
                ("user", user),
                ("did", did),
                ("trtype", fields["trtype"]),
                ("id", f"{prefix}-{link}"),
            ]
            assert body == expect, f"{scenario}: {body} != {expect}"
        else:
            keys = [
                "event",
                "callerid",
                "user",
                "did",
                "finishtype",
                "transfer",
                "title",
                "id",
                "duration",
                "ringtime",
                "didname",
            ] + (["callback"] if fields["callback"] is not None else [])
            assert [k for k, _ in body] == keys, f"{scenario}: {body}"
            fixed = {
                "event": event,
                "callerid": caller,
                "user": user,
                "did": did,
                "finishtype": fields["finishtype"],
                "transfer": str(fields["transfer"]).lower(),
                "id": f"{prefix}-{link}",
                "didname": "" if outbound else "Main line",
            }
            if fields["callback"] is not None:
                fixed["callback"] = str(fields["callback"]).lower()
            assert {k: values[k] for k in fixed} == fixed, f"{scenario}: {body}"
            duration, ring = int(values["duration"]), int(values["ringtime"])
            if not timing:
                continue
            assert abs(duration - fields["duration"]) <= 1 and abs(ring - fields["ringtime"]) <= 1, (
                f"{scenario}: {body}"
            )
            assert values["title"] == title(fields, outbound, duration, ring), f"{scenario}: {body}"


def title(fields: dict[str, Any], outbound: bool, duration: int, ring: int) -> str:
    head = "Outgoing call" if outbound else "Main line"
    if fields["finishtype"] == "Ok":
        return f"{head}: talk {hms(duration)}" + (", transferred" if fields["transfer"] else "")
    parts = []
    if fields["queue_missed"]:
        parts.append(
            f"queue {fields['queue_missed']}, " + ("callback ordered" if fields["callback"] else "no callback")
        )
    parts.append(("not answered, dialled " if outbound else "missed, waited ") + hms(ring))
    return f"{head}: " + ", ".join(parts)
