"""Every event kind rendered by a real dispatcher, byte for byte, in the form and json formats: the legacy
module's fields exactly, then the contract's extras (here only `event_at`, the one every call event has)."""

from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.v1 import common_pb2, events_pb2
from tests.fakes.receiver import Receiver

from .conftest import Dispatchers, answered, ended, ringing

CHAIN = "251125184500_698"
WHEN = Timestamp(seconds=1764085500, nanos=123_000_000)  # 2025-11-25T15:45:00.123Z


def _events() -> list[events_pb2.Event]:
    call_ended_info = ended(CHAIN, 1).call
    stopped = ringing(CHAIN, 0, user="102", event_id=f"{CHAIN}-0/stopped/102")
    stopped.call.type = events_pb2.CALL_EVENT_TYPE_RINGING_STOPPED
    stopped.call.reason = common_pb2.RINGING_STOPPED_REASON_ANSWERED_ELSEWHERE
    out = [
        ringing(CHAIN, 0),
        stopped,
        answered(CHAIN, 1),
        ended(CHAIN, 1, title="Главная линия, обратный звонок: да, 0:01:05", has_callback=True, callback=True),
        events_pb2.Event(
            event_id=f"{CHAIN}-1/recording",
            chain=CHAIN,
            recording=events_pb2.RecordingReady(
                call_id=f"{CHAIN}-1",
                files=[
                    events_pb2.RecordingFile(
                        url="https://m.example/r/1.mp3?sig=a+b", duration_seconds=40.5, size_bytes=324000
                    ),
                    events_pb2.RecordingFile(url="https://m.example/r/2.mp3", duration_seconds=24, size_bytes=192000),
                ],
                call=call_ended_info,
            ),
        ),
        events_pb2.Event(
            event_id=f"{CHAIN}-1/analytics",
            chain=CHAIN,
            analytics=events_pb2.AnalyticsReady(
                call_id=f"{CHAIN}-1",
                text="operator: Добрый день\nclient: Здравствуйте & всё",
                summary="Клиент звонил.",
                segments=[
                    events_pb2.TranscriptSegment(
                        channel="operator", start_seconds=0.5, end_seconds=1.5, text="Добрый день"
                    )
                ],
                language="ru-RU",
                backend="offline",
            ),
        ),
        events_pb2.Event(
            event_id=f"{CHAIN}-2/analytics",
            chain=CHAIN,
            analytics_failed=events_pb2.AnalyticsFailed(call_id=f"{CHAIN}-2", error="no backend configured"),
        ),
        events_pb2.Event(
            event_id="fwd/1",
            chain="ext:101",
            status=events_pb2.StatusEvent(
                type=events_pb2.STATUS_EVENT_TYPE_FORWARDING,
                user="101",
                name="Анна Петрова",
                status="Out of office",
                previous="Available",
            ),
        ),
        events_pb2.Event(
            event_id="qs/1",
            chain="ext:101",
            status=events_pb2.StatusEvent(
                type=events_pb2.STATUS_EVENT_TYPE_QUEUE_STATUS,
                user="101",
                queue="800",
                queue_name="Sales",
                status="out",
                previous="in",
            ),
        ),
        events_pb2.Event(
            event_id="add/1",
            chain="ext:105",
            status=events_pb2.StatusEvent(
                type=events_pb2.STATUS_EVENT_TYPE_EXTENSION_ADDED, user="105", name="Ivan Ivanov"
            ),
        ),
        events_pb2.Event(
            event_id="out/1",
            chain="251125184501_699",
            call=events_pb2.CallEvent(
                type=events_pb2.CALL_EVENT_TYPE_ANSWERED,
                call_id="251125184501_699-1",
                caller_id="79161234567",
                user="101",
                direction=common_pb2.DIRECTION_OUTGOING,
                transfer_type=common_pb2.TRANSFER_TYPE_BLIND,
            ),
        ),
    ]
    for event in out:
        event.occur_time.CopyFrom(WHEN)
    return out


FORM = [
    b"event=ringing&callerid=79161234567&did=74951234567&user=101&usertype=ext&id=251125184500_698-0",
    b"event=ringingstopped&callerid=79161234567&did=74951234567&user=102&usertype=ext&id=251125184500_698-0"
    b"&reason=answered_elsewhere",
    b"event=hangupincoming&callerid=79161234567&user=101&did=74951234567&trtype=NotDef&id=251125184500_698-1",
    b"event=incoming&callerid=79161234567&user=101&did=74951234567&finishtype=Ok&transfer=false"
    b"&title=%D0%93%D0%BB%D0%B0%D0%B2%D0%BD%D0%B0%D1%8F+%D0%BB%D0%B8%D0%BD%D0%B8%D1%8F%2C+%D0%BE%D0%B1%D1%80%D0%B0"
    b"%D1%82%D0%BD%D1%8B%D0%B9+%D0%B7%D0%B2%D0%BE%D0%BD%D0%BE%D0%BA%3A+%D0%B4%D0%B0%2C+0%3A01%3A05"
    b"&id=251125184500_698-1&duration=65&ringtime=4&didname=Main+line&callback=true",
    b"event=recording&id=251125184500_698-1&links%5B%5D=https%3A%2F%2Fm.example%2Fr%2F1.mp3%3Fsig%3Da%2Bb"
    b"&links%5B%5D=https%3A%2F%2Fm.example%2Fr%2F2.mp3&durations%5B%5D=40.5&durations%5B%5D=24"
    b"&callerid=79161234567&user=101&did=74951234567&finishtype=Ok&transfer=false&title=Main+line%2C+0%3A01%3A05"
    b"&duration=65&ringtime=4&didname=Main+line",
    b"event=analytics&id=251125184500_698-1&text=operator%3A+%D0%94%D0%BE%D0%B1%D1%80%D1%8B%D0%B9+%D0%B4%D0%B5%D0%BD"
    b"%D1%8C%0Aclient%3A+%D0%97%D0%B4%D1%80%D0%B0%D0%B2%D1%81%D1%82%D0%B2%D1%83%D0%B9%D1%82%D0%B5+%26+%D0%B2%D1%81"
    b"%D1%91&summary=%D0%9A%D0%BB%D0%B8%D0%B5%D0%BD%D1%82+%D0%B7%D0%B2%D0%BE%D0%BD%D0%B8%D0%BB.",
    b"event=analyticsfailed&id=251125184500_698-2&error=no+backend+configured",
    b"event=forwarding&user=101&name=%D0%90%D0%BD%D0%BD%D0%B0+%D0%9F%D0%B5%D1%82%D1%80%D0%BE%D0%B2%D0%B0"
    b"&status=Out+of+office&previous=Available",
    b"event=queuestatus&user=101&queue=800&status=out&previous=in",
    b"event=extensionadded&user=105&name=Ivan+Ivanov",
    b"event=hangupoutgoing&callerid=79161234567&user=101&did=&trtype=Blind&id=251125184501_699-1",
]

TS = "2025-11-25T15:45:00.123Z"
AT = "2025-11-25T18:45:00.123+03:00"  # WHEN in [pbx] timezone = Europe/Moscow
CALL_EVENTS = (0, 1, 2, 3, 10)  # the indexes of the call events in _events()
ENDED_DATA = {
    "callerid": "79161234567",
    "user": "101",
    "did": "74951234567",
    "finishtype": "Ok",
    "transfer": False,
    "title": "Main line, 0:01:05",
}
JSON = [
    {
        "type": "call.ringing",
        "timestamp": TS,
        "data": {
            "callerid": "79161234567",
            "did": "74951234567",
            "user": "101",
            "usertype": "ext",
            "id": "251125184500_698-0",
        },
    },
    {
        "type": "call.ringing_stopped",
        "timestamp": TS,
        "data": {
            "callerid": "79161234567",
            "did": "74951234567",
            "user": "102",
            "usertype": "ext",
            "id": "251125184500_698-0",
            "reason": "answered_elsewhere",
        },
    },
    {
        "type": "call.answered",
        "timestamp": TS,
        "data": {
            "callerid": "79161234567",
            "user": "101",
            "did": "74951234567",
            "trtype": "NotDef",
            "id": "251125184500_698-1",
            "direction": "incoming",
        },
    },
    {
        "type": "call.ended",
        "timestamp": TS,
        "data": {
            **ENDED_DATA,
            "title": "Главная линия, обратный звонок: да, 0:01:05",
            "id": "251125184500_698-1",
            "duration": 65,
            "ringtime": 4,
            "didname": "Main line",
            "callback": True,
            "direction": "incoming",
        },
    },
    {
        "type": "recording.ready",
        "timestamp": TS,
        "data": {
            "id": "251125184500_698-1",
            "links": ["https://m.example/r/1.mp3?sig=a+b", "https://m.example/r/2.mp3"],
            "files": [
                {"url": "https://m.example/r/1.mp3?sig=a+b", "duration": 40.5, "size": 324000},
                {"url": "https://m.example/r/2.mp3", "duration": 24.0, "size": 192000},
            ],
            **ENDED_DATA,
            "duration": 65,
            "ringtime": 4,
            "didname": "Main line",
        },
    },
    {
        "type": "analytics.ready",
        "timestamp": TS,
        "data": {
            "id": "251125184500_698-1",
            "text": "operator: Добрый день\nclient: Здравствуйте & всё",
            "summary": "Клиент звонил.",
            "segments": [{"channel": "operator", "start": 0.5, "end": 1.5, "text": "Добрый день"}],
            "language": "ru-RU",
            "backend": "offline",
        },
    },
    {
        "type": "analytics.failed",
        "timestamp": TS,
        "data": {"id": "251125184500_698-2", "error": "no backend configured"},
    },
    {
        "type": "agent.forwarding_changed",
        "timestamp": TS,
        "data": {"user": "101", "name": "Анна Петрова", "status": "Out of office", "previous": "Available"},
    },
    {
        "type": "agent.queue_status_changed",
        "timestamp": TS,
        "data": {"user": "101", "queue": "800", "status": "out", "previous": "in", "queuename": "Sales"},
    },
    {"type": "extension.added", "timestamp": TS, "data": {"user": "105", "name": "Ivan Ivanov"}},
    {
        "type": "call.answered",
        "timestamp": TS,
        "data": {
            "callerid": "79161234567",
            "user": "101",
            "did": "",
            "trtype": "Blind",
            "id": "251125184501_699-1",
            "direction": "outgoing",
        },
    },
]


def test_form_and_json_bodies_are_exact(dispatchers: Dispatchers) -> None:
    form_bodies = [
        body + (b"&event_at=" + AT.replace(":", "%3A").replace("+", "%2B").encode() if i in CALL_EVENTS else b"")
        for i, body in enumerate(FORM)
    ]
    json_bodies = [
        {**body, "data": {**body["data"], "event_at": AT}} if i in CALL_EVENTS else body for i, body in enumerate(JSON)
    ]
    with Receiver() as form_crm, Receiver() as json_crm:
        d = dispatchers.make(
            webhook={"url": form_crm.url},
            pbx={"timezone": "Europe/Moscow"},
            **{"webhook:json": {"url": json_crm.url, "format": "json"}},
        )
        events = _events()
        for event in events:
            assert d.publish(event).deliveries == 2
        form = form_crm.wait_for_sync(len(events))
        got_json = json_crm.wait_for_sync(len(events))
    # one chain per call (and per extension): the order within each is the publish order
    by_id = {r.headers["webhook-id"]: r for r in form}
    assert len(by_id) == len(events)
    assert sorted(r.body for r in form) == sorted(form_bodies)
    for chain in (CHAIN, "ext:101"):
        expected = [form_bodies[i] for i, e in enumerate(events) if e.chain == chain]
        assert [r.body for r in form if r.body in expected] == expected
    for request in form:
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    for request in got_json:
        assert request.headers["Content-Type"] == "application/json"
        assert request.body == json.dumps(json.loads(request.body), ensure_ascii=False, separators=(",", ":")).encode()
    assert sorted((json.loads(r.body) for r in got_json), key=json.dumps) == sorted(json_bodies, key=json.dumps)
    # key order in `data` follows the form order
    ringing_body = next(json.loads(r.body) for r in got_json if json.loads(r.body)["type"] == "call.ringing")
    assert list(ringing_body["data"]) == ["callerid", "did", "user", "usertype", "id", "event_at"]
