"""The contract's additions to the call events (docs/webhooks.md §3), through a real dispatcher to a real
receiver: the opt-in `dialing` event."""
from __future__ import annotations

from tcxhooks.v1 import common_pb2, events_pb2
from tests.helpers.receiver import Receiver, Request

from .conftest import CALLER, Dispatchers, answered, ended, new_chain

OUT = common_pb2.DIRECTION_OUTGOING


def dialing(chain: str, user: str = "101") -> events_pb2.Event:
    call = events_pb2.CallEvent(type=events_pb2.CALL_EVENT_TYPE_DIALING, call_id=f"{chain}-0", caller_id=CALLER,
                                user=user, direction=OUT)
    return events_pb2.Event(event_id=f"{chain}-0/dialing", chain=chain, call=call)


def outbound_call(chain: str) -> list[events_pb2.Event]:
    """101 dials out, the far end answers, they hang up."""
    return [dialing(chain), answered(chain, 1, direction=OUT, did=""),
            ended(chain, 1, direction=OUT, did="", did_name="", title="0:01:05")]


def _header(requests: list[Request], name: str) -> list[str]:
    return [r.headers[name] for r in requests]


def test_dialing_goes_only_to_the_endpoints_that_name_it(dispatchers: Dispatchers) -> None:
    chain = new_chain()
    with Receiver() as everything, Receiver() as opted_in, Receiver() as json_crm:
        d = dispatchers.make(webhook={"url": everything.url},
                             **{"webhook:dialing": {"url": opted_in.url, "events": "*, dialing"},
                                "webhook:json": {"url": json_crm.url, "format": "json",
                                                 "events": "call.dialing, call.ended"}})
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
    assert named[0].form_items()[:5] == [("event", "dialing"), ("callerid", CALLER), ("user", "101"), ("did", ""),
                                         ("id", f"{chain}-0")]
    assert [r.json()["type"] for r in typed] == ["call.dialing", "call.ended"]
    data = typed[0].json()["data"]
    assert list(data)[:5] == ["callerid", "user", "did", "id", "direction"]
    assert (data["callerid"], data["user"], data["did"], data["id"], data["direction"]) == (
        CALLER, "101", "", f"{chain}-0", "outgoing")
