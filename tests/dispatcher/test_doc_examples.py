"""docs/webhooks.md §9 shows every event in both formats: each example is what the dispatcher renders for
it, byte for byte, and every event type has one. `python -m tests.dispatcher.test_doc_examples` prints the
section's examples again after a change to the contract."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.dispatcher.payloads import EVENT_NAMES, event_names, render, validate
from tcxhooks.v1 import common_pb2 as c
from tcxhooks.v1 import events_pb2 as e

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
ZONE = ZoneInfo("Europe/Moscow")  # [pbx] timezone of the examples
T0 = 1764085500  # 2025-11-25T15:45:00Z: the call id's 251125184500 in Moscow
CHAIN = "251125184500_698"
CALLER, DID = "79161234567", "74951234567"
QUEUE = dict(caller_name="Ivan Petrov", queue="800", queue_name="Sales", group="700", group_name="Main menu")


def _at(offset: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(T0 * 10**9 + round(offset * 10**9))
    return stamp


def _call(at: float, **fields: Any) -> e.Event:
    call = e.CallEvent(**fields)
    return e.Event(
        event_id=f"{call.call_id}/{call.type}/{call.user}",
        chain=call.call_id.rsplit("-", 1)[0],
        occur_time=_at(at),
        call=call,
    )


def _other(at: float, **payload: Any) -> e.Event:
    return e.Event(event_id="example", chain=CHAIN, occur_time=_at(at), **payload)


# (what the example shows, the event)
EXAMPLES: list[tuple[str, e.Event]] = [
    (
        "Queue 800 (reached through the IVR 700) rings agent 101.",
        _call(
            7.412,
            type=e.CALL_EVENT_TYPE_RINGING,
            call_id=f"{CHAIN}-0",
            caller_id=CALLER,
            did=DID,
            user="101",
            user_type=c.USER_TYPE_EXT,
            started_time=_at(0),
            user_name="Anna Smith",
            **QUEUE,
        ),
    ),
    (
        "101 stops ringing: 102 took the call.",
        _call(
            12.03,
            type=e.CALL_EVENT_TYPE_RINGING_STOPPED,
            call_id=f"{CHAIN}-0",
            caller_id=CALLER,
            did=DID,
            user="101",
            user_type=c.USER_TYPE_EXT,
            reason=c.RINGING_STOPPED_REASON_ANSWERED_ELSEWHERE,
            started_time=_at(0),
            user_name="Anna Smith",
            **QUEUE,
        ),
    ),
    (
        "102 answers.",
        _call(
            12.0,
            type=e.CALL_EVENT_TYPE_ANSWERED,
            call_id=f"{CHAIN}-1",
            caller_id=CALLER,
            did=DID,
            user="102",
            direction=c.DIRECTION_INCOMING,
            transfer_type=c.TRANSFER_TYPE_NOT_DEF,
            started_time=_at(0),
            answered_time=_at(12),
            user_name="Boris Ivanov",
            **QUEUE,
        ),
    ),
    (
        "102 has talked 65 s and blind-transfers the caller to 103.",
        _call(
            77.5,
            type=e.CALL_EVENT_TYPE_ENDED,
            call_id=f"{CHAIN}-1",
            caller_id=CALLER,
            did=DID,
            user="102",
            direction=c.DIRECTION_INCOMING,
            finish_type=c.FINISH_TYPE_OK,
            transfer=True,
            title="Main line: talk 0:01:05, transferred",
            duration_seconds=65,
            ring_seconds=12,
            did_name="Main line",
            has_callback=True,
            callback_state=c.CALLBACK_STATE_NOT_ORDERED,
            started_time=_at(0),
            answered_time=_at(12),
            ended_time=_at(77.5),
            user_name="Boris Ivanov",
            transferred_to="103",
            transferred_to_name="Olga Sidorova",
            **QUEUE,
        ),
    ),
    (
        "103 answers the transferred call.",
        _call(
            80.2,
            type=e.CALL_EVENT_TYPE_ANSWERED,
            call_id=f"{CHAIN}-2",
            caller_id=CALLER,
            did=DID,
            user="103",
            direction=c.DIRECTION_INCOMING,
            transfer_type=c.TRANSFER_TYPE_BLIND,
            started_time=_at(0),
            answered_time=_at(80.2),
            user_name="Olga Sidorova",
            transferred_from="102",
            transferred_from_name="Boris Ivanov",
            **QUEUE,
        ),
    ),
    (
        "Another caller waits 40 s in queue 800 and hangs up; the PBX cannot tell whether this caller ordered the "
        "callback it reports.",
        _call(
            100.0,
            type=e.CALL_EVENT_TYPE_ENDED,
            call_id="251125184600_699-0",
            caller_id="79035550101",
            did=DID,
            user="800",
            direction=c.DIRECTION_INCOMING,
            finish_type=c.FINISH_TYPE_MISSED,
            title="Main line: queue 800, callback unknown, missed, waited 0:00:40",
            ring_seconds=40,
            did_name="Main line",
            has_callback=True,
            callback_state=c.CALLBACK_STATE_UNKNOWN,
            started_time=_at(60),
            ended_time=_at(100),
            user_name="Sales",
            queue="800",
            queue_name="Sales",
        ),
    ),
    (
        "101 dials 79031112233 (opt-in: only endpoints whose `events` name it).",
        _call(
            300.1,
            type=e.CALL_EVENT_TYPE_DIALING,
            call_id="251125185000_702-0",
            caller_id="79031112233",
            user="101",
            direction=c.DIRECTION_OUTGOING,
            started_time=_at(300),
            caller_name="ООО Ромашка",
            user_name="Anna Smith",
        ),
    ),
    (
        "The far end answers.",
        _call(
            306.4,
            type=e.CALL_EVENT_TYPE_ANSWERED,
            call_id="251125185000_702-1",
            caller_id="79031112233",
            user="101",
            direction=c.DIRECTION_OUTGOING,
            transfer_type=c.TRANSFER_TYPE_NOT_DEF,
            started_time=_at(300),
            answered_time=_at(306.4),
            caller_name="ООО Ромашка",
            user_name="Anna Smith",
        ),
    ),
    (
        "They hang up after 2 minutes.",
        _call(
            426.4,
            type=e.CALL_EVENT_TYPE_ENDED,
            call_id="251125185000_702-1",
            caller_id="79031112233",
            user="101",
            direction=c.DIRECTION_OUTGOING,
            finish_type=c.FINISH_TYPE_OK,
            title="Outgoing call: talk 0:02:00",
            duration_seconds=120,
            ring_seconds=6,
            started_time=_at(300),
            answered_time=_at(306.4),
            ended_time=_at(426.4),
            caller_name="ООО Ромашка",
            user_name="Anna Smith",
        ),
    ),
    (
        "102's recording (a mobile app reconnected once: two files).",
        _other(
            90,
            recording=e.RecordingReady(
                call_id=f"{CHAIN}-1",
                files=[
                    e.RecordingFile(
                        url=f"https://rec.example.com/r/{CHAIN}-1/1.mp3?exp=1771861500&sig=Qm9yaXM",
                        duration_seconds=40.52,
                        size_bytes=324160,
                    ),
                    e.RecordingFile(
                        url=f"https://rec.example.com/r/{CHAIN}-1/2.mp3?exp=1771861500&sig=SXZhbm92",
                        duration_seconds=24.8,
                        size_bytes=198400,
                    ),
                ],
            ),
        ),
    ),
    (
        "Its transcript and summary.",
        _other(
            130,
            analytics=e.AnalyticsReady(
                call_id=f"{CHAIN}-1",
                text="operator: Sales, Boris speaking.\nclient: Hello, I'd like to order a sofa.",
                summary="The client wants to order a sofa.",
                language="en",
                backend="openai",
                segments=[
                    e.TranscriptSegment(
                        channel="operator", start_seconds=0.4, end_seconds=2.1, text="Sales, Boris speaking."
                    ),
                    e.TranscriptSegment(
                        channel="client", start_seconds=2.6, end_seconds=5.0, text="Hello, I'd like to order a sofa."
                    ),
                ],
            ),
        ),
    ),
    (
        "The transcription of another leg failed for good.",
        _other(
            140, analytics_failed=e.AnalyticsFailed(call_id=f"{CHAIN}-2", error="backend answered 401 Unauthorized")
        ),
    ),
    (
        "101 sets the profile Out of office.",
        _other(
            200,
            status=e.StatusEvent(
                type=e.STATUS_EVENT_TYPE_FORWARDING,
                user="101",
                name="Anna Smith",
                status="Out of office",
                previous="Available",
            ),
        ),
    ),
    (
        "101 logs out of all queues.",
        _other(
            201,
            status=e.StatusEvent(
                type=e.STATUS_EVENT_TYPE_QUEUE_LOGIN, user="101", name="Anna Smith", status="out", previous="in"
            ),
        ),
    ),
    (
        "102 logs in to queue 800.",
        _other(
            202,
            status=e.StatusEvent(
                type=e.STATUS_EVENT_TYPE_QUEUE_STATUS,
                user="102",
                queue="800",
                queue_name="Sales",
                status="in",
                previous="out",
            ),
        ),
    ),
    (
        "Extension 105 is created.",
        _other(
            203,
            status=e.StatusEvent(
                type=e.STATUS_EVENT_TYPE_EXTENSION_ADDED, user="105", name="Ivan Ivanov", email="i.ivanov@example.com"
            ),
        ),
    ),
    (
        "Extension 104 is deleted.",
        _other(204, status=e.StatusEvent(type=e.STATUS_EVENT_TYPE_EXTENSION_DELETED, user="104", name="Petr Petrov")),
    ),
    (
        "105 becomes an agent of queue 800.",
        _other(
            205, status=e.StatusEvent(type=e.STATUS_EVENT_TYPE_AGENT_ADDED, user="105", queue="800", queue_name="Sales")
        ),
    ),
    (
        "101 is no longer an agent of queue 800.",
        _other(
            206,
            status=e.StatusEvent(type=e.STATUS_EVENT_TYPE_AGENT_REMOVED, user="101", queue="800", queue_name="Sales"),
        ),
    ),
    (
        "`tcxhooks check` pings the endpoint.",
        _other(300, ping=e.Ping(id="0b6f1f4e-8d1c-4f7a-9a51-3c2a5e0d7b11", time="2025-11-25T15:50:00Z")),
    ),
]


def section() -> str:
    """The examples as docs/webhooks.md §9 shows them."""
    parts = []
    for caption, event in EXAMPLES:
        form_name, json_type = event_names(event)
        body = json.loads(render(event, "json", ZONE))
        parts.append(
            f"### `{form_name}` (`{json_type}`)\n{caption}\n\n```\n{render(event, 'form', ZONE).decode()}\n"
            f"```\n\n```json\n{json.dumps(body, ensure_ascii=False, indent=2)}\n```\n"
        )
    return "\n".join(parts)


def _documented() -> tuple[list[str], list[Any]]:
    """(form bodies, JSON bodies) of §9's code blocks."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("\n## 9. ")
    end = text.find("\n## ", start + 1)
    nine = text[start : end if end >= 0 else None]
    forms = re.findall(r"```\n(event=[^\n]*)\n```", nine)
    jsons = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", nine, re.S)]
    return forms, jsons


def test_every_example_is_what_the_dispatcher_renders() -> None:
    forms, jsons = _documented()
    for _, event in EXAMPLES:
        validate(event)
    assert forms == [render(event, "form", ZONE).decode() for _, event in EXAMPLES]
    assert jsons == [json.loads(render(event, "json", ZONE)) for _, event in EXAMPLES]


def test_every_event_type_has_an_example() -> None:
    shown = {name for _, event in EXAMPLES for name in event_names(event)}
    json_types = {name for name in EVENT_NAMES if "." in name}
    assert json_types <= shown, sorted(json_types - shown)


if __name__ == "__main__":
    print(section())
