"""call.ended completion: DID and rule name from the inbound-call report, queue callback, titles in ru and en."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tcxhooks.monitor.callback import QueueExits
from tcxhooks.monitor.enrich import Enricher
from tcxhooks.monitor.errors import PbxError
from tcxhooks.monitor.facts import Facts, Rule
from tcxhooks.monitor.pbx.xapi import parse_time
from tcxhooks.monitor.titles import hms, title
from tcxhooks.v1 import common_pb2, events_pb2

NOW = 1_764_096_300.0


def iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reports:
    """The XAPI reports; `callbacks`: the moments callbacks were ordered in queue 800."""

    def __init__(self, callbacks: tuple[float, ...] = (NOW - 1,), broken: bool = False) -> None:
        self.paths: list[str] = []
        self.callbacks = callbacks
        self.broken = broken

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        self.paths.append(path)
        if "GetInboundCalls" in path:
            return {
                "value": [
                    {
                        "Did": "74950000000",
                        "RuleName": "Other",
                        "SourceCallerId": "+79160000000",
                        "StartTime": iso(NOW - 30),
                    },
                    {
                        "Did": "74951234567",
                        "RuleName": "",
                        "SourceCallerId": "+79161234567",
                        "StartTime": iso(NOW - 40),
                    },
                    {"Did": "garbage", "StartTime": "yesterday"},
                ]
            }
        if self.broken:
            raise PbxError("XAPI ReportQueueCallbacks: 500")
        start, end = (
            parse_time(path.split(f"{name}=")[1].split(",")[0].split(")")[0]) for name in ("startDt", "endDt")
        )
        assert start is not None and end is not None, path
        count = sum(1 for moment in self.callbacks if start <= moment <= end)
        return {"value": [{"QueueDnNumber": "800", "CallbacksCount": count}]}


def ended(**fields: Any) -> events_pb2.CallEvent:
    base = dict(
        type=events_pb2.CALL_EVENT_TYPE_ENDED,
        call_id="251125184500_698-0",
        caller_id="79161234567",
        direction=common_pb2.DIRECTION_INCOMING,
        user="800",
        queue="800",
        has_callback=True,
        finish_type=common_pb2.FINISH_TYPE_MISSED,
        ring_seconds=30,
    )
    return events_pb2.CallEvent(**{**base, **fields})


async def test_did_from_the_report_rule_name_from_the_rules_and_the_callback() -> None:
    reports = Reports()
    enricher = Enricher(reports, Facts(rules=[Rule("Main line", "74951234567")]), "en")  # type: ignore[arg-type]
    out = await enricher.ended(ended(), NOW, "did,callback")
    assert (out.did, out.did_name, out.callback) == ("74951234567", "Main line", True)
    assert out.callback_state == common_pb2.CALLBACK_STATE_ORDERED
    assert out.title == "Main line: queue 800, callback ordered, missed, waited 0:00:30"
    again = await enricher.ended(ended(), NOW, "did,callback")  # a retry: same values, no new report reads
    assert again == out and len(reports.paths) == 2


async def test_a_callback_another_caller_ordered_during_this_wait_is_not_this_callers() -> None:
    """Two callers wait in queue 800; the one who left 20 s earlier ordered the callback the report counts."""
    exits = QueueExits()
    exits.record("800", "251125184440_697", NOW - 20)
    enricher = Enricher(Reports(callbacks=(NOW - 20,)), Facts(), "en", exits)  # type: ignore[arg-type]
    out = await enricher.ended(ended(), NOW, "callback")
    assert (out.callback, out.callback_state) == (False, common_pb2.CALLBACK_STATE_NOT_ORDERED)
    assert "queue 800, no callback" in out.title
    mine = await Enricher(Reports(callbacks=(NOW - 20,)), Facts(), "en", exits).ended(  # type: ignore[arg-type]
        ended(call_id="251125184440_697-0", ring_seconds=10), NOW - 20, "callback"
    )
    assert (mine.callback, mine.callback_state) == (True, common_pb2.CALLBACK_STATE_ORDERED)


async def test_a_callback_counted_as_two_callers_left_the_queue_is_unknown_to_both() -> None:
    exits = QueueExits()
    exits.record("800", "251125184500_698", NOW)
    exits.record("800", "251125184501_699", NOW + 1)
    for call_id, left in (("251125184500_698-0", NOW), ("251125184501_699-0", NOW + 1)):
        enricher = Enricher(Reports(callbacks=(NOW - 0.5,)), Facts(), "en", exits)  # type: ignore[arg-type]
        out = await enricher.ended(ended(call_id=call_id), left, "callback")
        assert (out.callback, out.callback_state) == (False, common_pb2.CALLBACK_STATE_UNKNOWN)
        assert "queue 800, callback unknown" in out.title


async def test_an_unreadable_callback_report_or_no_xapi_is_unknown_not_false() -> None:
    out = await Enricher(Reports(broken=True), Facts(), "en").ended(ended(), NOW, "callback")  # type: ignore[arg-type]
    assert (out.callback, out.callback_state) == (False, common_pb2.CALLBACK_STATE_UNKNOWN)
    out = await Enricher(None, Facts(), "ru").ended(ended(), NOW, "callback")
    assert out.callback_state == common_pb2.CALLBACK_STATE_UNKNOWN
    assert "обратный звонок неизвестен" in out.title


def test_titles_in_both_languages() -> None:
    ok = ended(
        finish_type=common_pb2.FINISH_TYPE_OK, duration_seconds=3725, did_name="Main line", user="101", transfer=True
    )
    assert title(ok, "ru") == "Main line: разговор 1:02:05, переведён"
    assert title(ok, "en") == "Main line: talk 1:02:05, transferred"
    out = ended(direction=common_pb2.DIRECTION_OUTGOING, user="101", queue="", has_callback=False, ring_seconds=12)
    assert title(out, "ru") == "Исходящий звонок: без ответа, набор 0:00:12"
    missed = ended(did_name="Main line", callback=False)
    assert title(missed, "ru") == "Main line: очередь 800, без обратного звонка, пропущен, ожидание 0:00:30"
    assert hms(0) == "0:00:00" and hms(59) == "0:00:59" and hms(36000) == "10:00:00"
