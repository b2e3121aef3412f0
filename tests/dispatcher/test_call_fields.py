"""The contract's additions to the call events (docs/webhooks.md §3), through a real dispatcher to a real
receiver: times and names after the legacy fields in both formats, `callback` true / false / unknown, the
opt-in `dialing` event."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.v1 import common_pb2, events_pb2
from tests.fakes.receiver import Receiver, Request

from .conftest import CALLER, DID, Dispatchers, answered, ended, new_chain, ringing

OUT = common_pb2.DIRECTION_OUTGOING


def dialing(chain: str, user: str = "101") -> events_pb2.Event:
    call = events_pb2.CallEvent(
        type=events_pb2.CALL_EVENT_TYPE_DIALING, call_id=f"{chain}-0", caller_id=CALLER, user=user, direction=OUT
    )
    return events_pb2.Event(event_id=f"{chain}-0/dialing", chain=chain, call=call)


def outbound_call(chain: str) -> list[events_pb2.Event]:
    """101 dials out, the far end answers, they hang up."""
    return [
        dialing(chain),
        answered(chain, 1, direction=OUT, did=""),
        ended(chain, 1, direction=OUT, did="", did_name="", title="0:01:05"),
    ]


def _header(requests: list[Request], name: str) -> list[str]:
    return [r.headers[name] for r in requests]


def test_dialing_goes_only_to_the_endpoints_that_name_it(dispatchers: Dispatchers) -> None:
    chain = new_chain()
    with Receiver() as everything, Receiver() as opted_in, Receiver() as json_crm:
        d = dispatchers.make(
            webhook={"url": everything.url},
            **{
                "webhook:dialing": {"url": opted_in.url, "events": "*, dialing"},
                "webhook:json": {"url": json_crm.url, "format": "json", "events": "call.dialing, call.ended"},
            },
        )
        counts = [d.publish(event).deliveries for event in outbound_call(chain)]
        default = everything.wait_exactly_sync(2)
        named = opted_in.wait_for_sync(3)
        typed = json_crm.wait_for_sync(2)
    assert counts == [2, 2, 3]
    # `*` leaves the opt-in event out; its endpoint numbers what it gets without a gap
    assert [r.form()["event"] for r in default] == ["hangupoutgoing", "outgoing"]
    assert _header(default, "x-tcxhooks-endpoint-sequence") == ["1", "2"]
    assert _header(default, "x-tcxhooks-sequence") == ["2", "3"]
    assert [r.form()["event"] for r in named] == ["dialing", "hangupoutgoing", "outgoing"]
    assert _header(named, "x-tcxhooks-endpoint-sequence") == ["1", "2", "3"]
    assert named[0].form_items()[:5] == [
        ("event", "dialing"),
        ("callerid", CALLER),
        ("user", "101"),
        ("did", ""),
        ("id", f"{chain}-0"),
    ]
    assert [r.json()["type"] for r in typed] == ["call.dialing", "call.ended"]
    data = typed[0].json()["data"]
    assert list(data)[:5] == ["callerid", "user", "did", "id", "direction"]
    assert (data["callerid"], data["user"], data["did"], data["id"], data["direction"]) == (
        CALLER,
        "101",
        "",
        f"{chain}-0",
        "outgoing",
    )


def _at(seconds: int, millis: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=millis * 1_000_000)


T0 = 1764085500  # 2025-11-25T15:45:00Z, 18:45 in Moscow
MOSCOW = {"timezone": "Europe/Moscow"}


def _queue_call(chain: str) -> list[events_pb2.Event]:
    """Queue 800 (after IVR 700) rings 102, who answers and blind-transfers the caller to an external number."""
    known_at_ringing = events_pb2.CallEvent(
        caller_name="Иван Петров",
        user_name="Anna Smith",
        queue_name="Sales",
        group="700",
        group_name="Main IVR",
        started_time=_at(T0),
    )
    ring = ringing(chain, 0, user="102", queue="800")
    ring.call.MergeFrom(known_at_ringing)
    ring.occur_time.CopyFrom(_at(T0 + 3, 250))
    end = ended(chain, 1, user="102", queue="800", transfer=True, title="Main line: talk 0:01:05, transferred")
    end.call.MergeFrom(known_at_ringing)
    end.call.MergeFrom(
        events_pb2.CallEvent(
            answered_time=_at(T0 + 4),
            ended_time=_at(T0 + 69, 5),
            transferred_to="79031112233",
            callback_state=common_pb2.CALLBACK_STATE_NOT_ORDERED,
        )
    )
    end.occur_time.CopyFrom(_at(T0 + 69, 5))
    return [ring, end]


RINGING_FORM = (
    b"event=ringing&callerid=79161234567&did=74951234567&user=102&usertype=ext&id={chain}-0"
    b"&event_at=2025-11-25T18%3A45%3A03.250%2B03%3A00&started_at=2025-11-25T18%3A45%3A00.000%2B03%3A00"
    b"&caller_name=%D0%98%D0%B2%D0%B0%D0%BD+%D0%9F%D0%B5%D1%82%D1%80%D0%BE%D0%B2&user_name=Anna+Smith"
    b"&queue=800&queue_name=Sales&group=700&group_name=Main+IVR"
)
ENDED_FORM = (
    b"event=incoming&callerid=79161234567&user=102&did=74951234567&finishtype=Ok&transfer=true"
    b"&title=Main+line%3A+talk+0%3A01%3A05%2C+transferred&id={chain}-1&duration=65&ringtime=4&didname=Main+line"
    b"&callback=false&event_at=2025-11-25T18%3A46%3A09.005%2B03%3A00&started_at=2025-11-25T18%3A45%3A00.000%2B03%3A00"
    b"&answered_at=2025-11-25T18%3A45%3A04.000%2B03%3A00&ended_at=2025-11-25T18%3A46%3A09.005%2B03%3A00"
    b"&caller_name=%D0%98%D0%B2%D0%B0%D0%BD+%D0%9F%D0%B5%D1%82%D1%80%D0%BE%D0%B2&user_name=Anna+Smith"
    b"&queue=800&queue_name=Sales&group=700&group_name=Main+IVR&transferred_to=79031112233"
)
NAMES = {
    "caller_name": "Иван Петров",
    "user_name": "Anna Smith",
    "queue": "800",
    "queue_name": "Sales",
    "group": "700",
    "group_name": "Main IVR",
}


def _json(chain: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "call.ringing",
            "timestamp": "2025-11-25T15:45:03.250Z",
            "data": {
                "callerid": CALLER,
                "did": DID,
                "user": "102",
                "usertype": "ext",
                "id": f"{chain}-0",
                "event_at": "2025-11-25T18:45:03.250+03:00",
                "started_at": "2025-11-25T18:45:00.000+03:00",
                **NAMES,
            },
        },
        {
            "type": "call.ended",
            "timestamp": "2025-11-25T15:46:09.005Z",
            "data": {
                "callerid": CALLER,
                "user": "102",
                "did": DID,
                "finishtype": "Ok",
                "transfer": True,
                "title": "Main line: talk 0:01:05, transferred",
                "id": f"{chain}-1",
                "duration": 65,
                "ringtime": 4,
                "didname": "Main line",
                "callback": False,
                "direction": "incoming",
                "event_at": "2025-11-25T18:46:09.005+03:00",
                "started_at": "2025-11-25T18:45:00.000+03:00",
                "answered_at": "2025-11-25T18:45:04.000+03:00",
                "ended_at": "2025-11-25T18:46:09.005+03:00",
                **NAMES,
                "transferred_to": "79031112233",
            },
        },
    ]


def test_times_and_names_follow_the_legacy_fields_in_both_formats(dispatchers: Dispatchers) -> None:
    chain = new_chain()
    with Receiver() as form_crm, Receiver() as json_crm:
        d = dispatchers.make(
            webhook={"url": form_crm.url}, pbx=MOSCOW, **{"webhook:json": {"url": json_crm.url, "format": "json"}}
        )
        for event in _queue_call(chain):
            d.publish(event)
        form = form_crm.wait_for_sync(2)
        got_json = json_crm.wait_for_sync(2)
    assert [r.body for r in form] == [
        RINGING_FORM.replace(b"{chain}", chain.encode()),
        ENDED_FORM.replace(b"{chain}", chain.encode()),
    ]
    assert [r.json() for r in got_json] == _json(chain)
    assert [list(r.json()["data"]) for r in got_json] == [list(body["data"]) for body in _json(chain)]


def _callback(state: int) -> events_pb2.Event:
    """A call missed at queue 800 (UNSPECIFIED: as if it were no queue call)."""
    return ended(
        new_chain(),
        0,
        user="800",
        finish_type=common_pb2.FINISH_TYPE_MISSED,
        duration_seconds=0,
        queue="800",
        callback_state=state,
    )


def test_callback_says_true_false_or_unknown_and_nothing_off_a_queue(dispatchers: Dispatchers) -> None:
    states = [
        common_pb2.CALLBACK_STATE_ORDERED,
        common_pb2.CALLBACK_STATE_NOT_ORDERED,
        common_pb2.CALLBACK_STATE_UNKNOWN,
        common_pb2.CALLBACK_STATE_UNSPECIFIED,
    ]
    events = [_callback(state) for state in states]
    events.append(
        events_pb2.Event(
            event_id="rec",
            chain=events[2].chain,
            recording=events_pb2.RecordingReady(
                call_id=events[2].call.call_id,
                files=[events_pb2.RecordingFile(url="https://m.example/r/1.mp3")],
                call=events[2].call,
            ),
        )
    )
    with Receiver() as form_crm, Receiver() as json_crm:
        d = dispatchers.make(webhook={"url": form_crm.url}, **{"webhook:json": {"url": json_crm.url, "format": "json"}})
        for event in events:
            d.publish(event)
        form = form_crm.wait_for_sync(len(events))
        got_json = json_crm.wait_for_sync(len(events))

    def ends(requests: list[Request]) -> list[Request]:
        """The call.ended webhooks in the order of `states`."""
        return [
            next(r for r in requests if e.call.call_id in r.body.decode() and b"recording" not in r.body)
            for e in events[:4]
        ]

    assert [r.form().get("callback") for r in ends(form)] == ["true", "false", "unknown", None]
    assert [r.json()["data"].get("callback", "absent") for r in ends(got_json)] == [True, False, None, "absent"]
    # the recording with its call's fields carries the same (form: in the legacy place, after didname)
    recording = next(r for r in form if r.form()["event"] == "recording")
    keys = [k for k, _ in recording.form_items()]
    assert keys[keys.index("didname") + 1 :] == ["callback", "queue"] and recording.form()["callback"] == "unknown"
    assert next(r for r in got_json if r.json()["type"] == "recording.ready").json()["data"]["callback"] is None
