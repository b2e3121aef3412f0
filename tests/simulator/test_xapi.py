"""XAPI: Recordings with OData queries, download, the late-file delay, Trunks/InboundRules/ActiveCalls/reports."""

from __future__ import annotations

import asyncio
import io
import re
import wave
from pathlib import Path

import pytest

from tcxhooks.simulator import odata

from .conftest import Sim

ROWS = [
    {
        "Id": i,
        "FromDn": "10000" if i % 2 else "101",
        "ToDn": "101" if i % 2 else "10000",
        "StartTime": f"2025-11-25T18:4{i}:00.000Z",
        "Name": "O'Brien" if i == 3 else f"n{i}",
    }
    for i in range(1, 7)
]
FIELDS = ("Id", "FromDn", "ToDn", "StartTime", "Name")


@pytest.mark.parametrize(
    "query,ids",
    [
        ({"$filter": "Id gt 4"}, [5, 6]),
        ({"$filter": "Id eq 3"}, [3]),
        ({"$filter": "Id ge 2 and Id le 3"}, [2, 3]),
        ({"$filter": "Id lt 2 or Id eq 6"}, [1, 6]),
        ({"$filter": "FromDn eq '10000' and ToDn eq '101'"}, [1, 3, 5]),
        ({"$filter": "(FromDn eq '101' or Id eq 1) and not (Id eq 4)"}, [1, 2, 6]),
        ({"$filter": "Name eq 'O''Brien'"}, [3]),
        ({"$filter": "(" * 40 + "Id eq 3" + ")" * 40}, [3]),
        ({"$filter": "StartTime ge 2025-11-25T18:45:00Z"}, [5, 6]),
        ({"$filter": "Id ne 1 and ToDn ne null"}, [2, 3, 4, 5, 6]),
        ({"$filter": "Id gt 1", "$orderby": "Id desc", "$top": "2"}, [6, 5]),
        ({"$orderby": "FromDn asc, Id desc", "$skip": "1", "$top": "3"}, [3, 1, 6]),
    ],
)
def test_filter_order_page(query: dict[str, str], ids: list[int]) -> None:
    value, count = odata.apply(ROWS, query, FIELDS)
    assert [row["Id"] for row in value] == ids and count is None


@pytest.mark.parametrize(
    "seconds,text", [(0, "PT0S"), (30.74, "PT30.7S"), (522, "PT8M42S"), (3723, "PT1H2M3S"), (3600, "PT1H")]
)
def test_report_durations(seconds: float, text: str) -> None:
    assert odata.duration(seconds) == text


def test_count_and_select() -> None:
    value, count = odata.apply(
        ROWS, {"$filter": "Id gt 2", "$top": "1", "$count": "true", "$select": "Id,ToDn"}, FIELDS
    )
    assert value == [{"Id": 3, "ToDn": "101"}] and count == 4


@pytest.mark.parametrize(
    "query",
    [
        {"$filter": "Id gt"},
        {"$filter": "Id gt 1 and"},
        {"$filter": "Nope eq 1"},
        {"$filter": "Id like 1"},
        {"$filter": "(Id eq 1"},
        {"$filter": "Id eq 'unterminated"},
        {"$filter": "Id eq 1 Id"},
        {"$filter": "eq 1"},
        {"$top": "-1"},
        {"$skip": "x"},
        {"$orderby": "Nope"},
        {"$orderby": "Id sideways"},
        {"$select": "Nope"},
        {"$filter": "Id eq 2025-13-45T99:00:00Z"},
        {"$filter": "Id eq #"},
        {"$filter": "(" * 3000 + "Id eq 1" + ")" * 3000},
        {"$filter": "not " * 500 + "Id eq 1"},
        {"$filter": " or ".join(["Id eq 1"] * 1000)},
    ],
)
def test_bad_queries_raise(query: dict[str, str]) -> None:
    with pytest.raises(odata.ODataError):
        odata.apply(ROWS, query, FIELDS)


async def test_recordings_over_http(sim: Sim, tmp_path: Path) -> None:
    first = await sim.wait_done(await sim.play("outbound_answered", talk_seconds=0.3))
    second = await sim.wait_done(await sim.play("mobile_reconnect", talk_seconds=0.9))
    (out_id,) = first["recordings"]
    page = await sim.get("/xapi/v1/Recordings", **{"$filter": f"Id gt {out_id}", "$orderby": "Id asc", "$top": "50"})
    assert page["@odata.context"].endswith("/xapi/v1/$metadata#Recordings")
    assert [r["Id"] for r in page["value"]] == second["recordings"] and len(second["recordings"]) == 3
    assert len({r["ToIdParticipant"] for r in page["value"]}) == 1
    outbound = (await sim.get("/xapi/v1/Recordings", **{"$filter": "FromDn eq '101' and ToDn eq '10000'"}))["value"]
    assert [(r["Id"], r["CallType"], r["ToCallerNumber"], r["FromCallerNumber"]) for r in outbound] == [
        (out_id, "OutboundExternal", "79031112233", "Ext.101")
    ]
    assert outbound[0]["RecordingUrl"].startswith("101/[Ivan Petrov]_101-79031112233_")
    for row in page["value"]:
        assert row["StartTime"].endswith("Z") and row["EndTime"] > row["StartTime"]
    await sim.get("/xapi/v1/Recordings", status=400, **{"$filter": "Id gt"})
    await sim.get(f"/xapi/v1/Recordings({out_id})", status=404)


async def test_download_and_missing_file(sim: Sim) -> None:
    row = await sim.wait_done(await sim.play("inbound_answered", talk_seconds=0.5))
    rec_id = row["recordings"][0]
    url = f"/xapi/v1/Recordings/Pbx.DownloadRecording(recId={rec_id})"
    async with sim.session.get(sim.url + url, headers=sim.auth()) as reply:
        assert reply.status == 200 and reply.headers["Content-Type"] == "audio/x-wav"
        assert reply.headers["Content-Disposition"].startswith('attachment; filename="[79161234567]_')
        data = await reply.read()
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnframes() >= 4000
    error = await sim.get("/xapi/v1/Recordings/Pbx.DownloadRecording(recId=999)", status=400)
    assert error["error"]["message"] == "WARNINGS.XAPI.FILE_NOT_FOUND"
    listed = (await sim.get("/xapi/v1/Recordings", **{"$filter": f"Id eq {rec_id}"}))["value"][0]
    (sim.state.config.recordings_dir / listed["RecordingUrl"]).unlink()
    await sim.get(url, status=400)
    await sim.get("/xapi/v1/Recordings/Pbx.DownloadRecording(recId=abc)", status=400)
    await sim.get("/xapi/v1/Recordings/Pbx.Nonsense()", status=400)


async def test_late_recording_appears_after_its_delay(sim: Sim) -> None:
    number = await sim.play("inbound_answered", recording_delay=1.5)
    for _ in range(400):
        if sim.state.pbx.recordings:
            break
        await asyncio.sleep(0.01)
    written = sim.state.pbx.recordings[0]
    assert (sim.state.config.recordings_dir / written.path).is_file()
    assert (await sim.get("/xapi/v1/Recordings"))["value"] == []  # on disk, not yet in XAPI
    row = await sim.wait_done(number)
    assert [r["Id"] for r in (await sim.get("/xapi/v1/Recordings"))["value"]] == row["recordings"]


async def test_trunks_rules_and_active_calls(sim: Sim) -> None:
    (trunk,) = (await sim.get("/xapi/v1/Trunks"))["value"]
    assert (trunk["Number"], trunk["DidNumbers"]) == ("10000", ["74951234567"])
    (rule,) = (await sim.get("/xapi/v1/InboundRules", **{"$filter": "Data eq '74951234567'"}))["value"]
    assert (rule["RuleName"], rule["Condition"]) == ("Main line", "BasedOnDID")
    number = await sim.play("transfer_to_external", ring_seconds=0.3, talk_seconds=1.0)
    calls: list[dict[str, object]] = []
    for _ in range(1000):
        calls = (await sim.get("/xapi/v1/ActiveCalls"))["value"]
        if calls and calls[0]["Status"] == "Talking":
            break
        await asyncio.sleep(0.01)
    assert [(c["Id"], c["Caller"], c["Callee"]) for c in calls] == [(number, "79161234567", "101 Ivan Petrov")]
    for _ in range(1000):  # 101 transferred the caller out: the call goes on without any monitored leg
        if not (await sim.get("/callcontrol/101"))["participants"]:
            break
        await asyncio.sleep(0.01)
    # ... and ActiveCalls shows the number called out where 101 was (Call Control shows it nowhere)
    assert [(c["Id"], c["Caller"], c["Callee"]) for c in (await sim.get("/xapi/v1/ActiveCalls"))["value"]] == [
        (number, "79161234567", "79031112233")
    ]
    await sim.wait_done(number)
    assert (await sim.get("/xapi/v1/ActiveCalls"))["value"] == []
    report = await sim.get(
        "/xapi/v1/ReportInboundCalls/Pbx.GetInboundCalls(periodFrom=2020-01-01T00:00:00Z,"
        "periodTo=2100-01-01T00:00:00Z,trunkDns='',callsType=0)"
    )
    assert [
        (r["Did"], r["RuleName"], r["SourceCallerId"], r["DestinationDn"], r["Status"]) for r in report["value"]
    ] == [("74951234567", "Main line", "79161234567", "101", "Answered")]
    row = report["value"][0]
    assert row["RingingDuration"].startswith("PT") and row["TalkingDuration"].startswith("PT")
    assert row["RecordingUrl"].startswith("101/") and isinstance(row["RecordingId"], int)
    await sim.get("/xapi/v1/ReportInboundCalls/Pbx.GetInboundCalls(periodTo=2100-01-01T00:00:00Z)", status=400)
    peers = {p["Number"]: p["Type"] for p in (await sim.get("/xapi/v1/Peers"))["value"]}
    assert (peers["101"], peers["800"], peers["700"], peers["900"], peers["10000"], peers["crmhooks"]) == (
        "Extension",
        "Queue",
        "IVR",
        "RingGroup",
        "ExternalLine",
        "RoutePoint",
    )
    status = await sim.get("/xapi/v1/SystemStatus")
    assert status["Version"].startswith("20.")


async def test_unknown_xapi_paths_are_odata_404(sim: Sim) -> None:
    for path in ("/xapi/v1/Nothing", "/xapi/v1/Recordings(3)", "/xapi/v1/Trunks/Deeper"):
        body = await sim.get(path, status=404)
        assert "No HTTP resource" in body["error"]["message"]


async def test_inbound_report_has_a_row_per_inbound_call(sim: Sim) -> None:
    row = await sim.wait_done(await sim.play("parallel_calls", calls=3))
    await sim.wait_done(await sim.play("outbound_answered"))
    path = (
        "/xapi/v1/ReportInboundCalls/Pbx.GetInboundCalls(periodFrom=2020-01-01T00:00:00Z,"
        "periodTo=2100-01-01T00:00:00Z,trunkDns='10000',callsType=0)"
    )
    report = await sim.get(path, **{"$orderby": "CallHistoryId"})
    assert [(r["SourceCallerId"], r["DestinationDn"]) for r in report["value"]] == [
        ("79161234567", "101"),
        ("79161234568", "102"),
        ("79161234569", "103"),
    ]
    assert len(row["call_numbers"]) == 3


async def test_directory_matches_the_dn_list(sim: Sim) -> None:
    users = (await sim.get("/xapi/v1/Users", **{"$orderby": "Number"}))["value"]
    assert [(u["Number"], u["DisplayName"]) for u in users] == [
        ("101", "Ivan Petrov"),
        ("102", "Maria Sidorova"),
        ("103", "Oleg Smirnov"),
        ("104", "Anna Kuznetsova"),
        ("105", "Pavel Volkov"),
    ]
    queues = (await sim.get("/xapi/v1/Queues", **{"$expand": "Agents"}))["value"]
    assert {q["Number"]: [a["Number"] for a in q["Agents"]] for q in queues} == {"800": ["101", "102"], "801": ["103"]}


async def test_active_calls_name_caller_and_callee_by_direction(sim: Sim) -> None:
    numbers = {
        await sim.play(name, ring_seconds=3.0, ext="103"): name
        for name in ("inbound_answered", "outbound_answered", "internal_call")
    }
    rows: list[dict[str, object]] = []
    for _ in range(1000):
        rows = (await sim.get("/xapi/v1/ActiveCalls"))["value"]
        if len(rows) == 3 and all(r["Callee"] for r in rows):
            break
        await asyncio.sleep(0.01)
    seen = {numbers[int(str(r["Id"]))]: (r["Caller"], r["Callee"], r["Status"]) for r in rows}
    assert seen == {
        "inbound_answered": ("79161234567", "103 Oleg Smirnov", "Routing"),
        "outbound_answered": ("103 Oleg Smirnov", "79031112233", "Routing"),
        "internal_call": ("103 Oleg Smirnov", "102 Maria Sidorova", "Routing"),
    }


CALL_LOG = (
    "/xapi/v1/ReportCallLogData/Pbx.GetCallLogData(periodFrom=2020-01-01T00:00:00Z,periodTo=2100-01-01T00:00:00Z,"
    "sourceType=0,sourceFilter='',destinationType=0,destinationFilter='',callsType=0,callTimeFilterType=0,"
    "callTimeFilterFrom='0:00:0',callTimeFilterTo='0:00:0',hidePcalls=true)"
)


def _segments(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [
        (r["SourceDn"], r["DestinationDn"], r["DestinationType"], r["Answered"], r["Direction"], r["Status"])
        for r in rows
    ]


async def test_call_log_rows_appear_when_the_call_ends(sim: Sim) -> None:
    number = await sim.play("queue_answered", ring_seconds=0.3, talk_seconds=0.3)
    for _ in range(1000):
        if (await sim.get("/callcontrol/102"))["participants"]:
            break
        await asyncio.sleep(0.01)
    assert (await sim.get(CALL_LOG))["value"] == []  # the log is written after the call
    await sim.wait_done(number)
    rows = (await sim.get(CALL_LOG, **{"$filter": f"CallId eq {number}"}))["value"]
    assert _segments(rows) == [
        ("10000", "800", 4, False, "Inbound Queue", "Redirected"),
        ("10000", "101", 0, False, "Inbound", "Unanswered"),
        ("10000", "102", 0, True, "Inbound", "Answered"),
    ]
    answered = rows[2]
    assert (answered["CallId"], answered["SourceCallerId"], answered["SegmentId"]) == (number, "79161234567", 3)
    assert answered["RingingDuration"].startswith("PT") and answered["TalkingDuration"].startswith("PT")
    assert answered["StartTime"].endswith("Z") and len({r["CallHistoryId"] for r in rows}) == 1


async def test_call_log_of_outbound_internal_missed_and_transferred_calls(sim: Sim) -> None:
    played = {
        name: await sim.play(name, ring_seconds=0.2, talk_seconds=0.2, ext="103")
        for name in (
            "outbound_answered",
            "outbound_unanswered",
            "internal_call",
            "caller_hangs_up_ringing",
            "attended_transfer",
        )
    }
    for number in played.values():
        await sim.wait_done(number)
    rows = (await sim.get(CALL_LOG, **{"$orderby": "CallId asc, SegmentId asc"}))["value"]
    by_call: dict[object, list[dict[str, object]]] = {}
    for row in rows:
        by_call.setdefault(row["CallId"], []).append(row)
    assert _segments(by_call[played["outbound_answered"]]) == [("103", "10000", 1, True, "Outbound", "Answered")]
    assert by_call[played["outbound_answered"]][0]["DestinationCallerId"] == "79031112233"
    assert _segments(by_call[played["outbound_unanswered"]]) == [("103", "10000", 1, False, "Outbound", "Unanswered")]
    assert _segments(by_call[played["internal_call"]]) == [("103", "102", 0, True, "Internal", "Answered")]
    assert _segments(by_call[played["caller_hangs_up_ringing"]]) == [
        ("10000", "103", 0, False, "Inbound", "Unanswered")
    ]
    transfer = played["attended_transfer"]  # 101 consults 102 (call B, internal), then 102 joins call A
    assert _segments(by_call[transfer]) == [
        ("10000", "101", 0, True, "Inbound", "Answered"),
        ("10000", "102", 0, True, "Inbound", "Answered"),
    ]
    assert _segments(by_call[transfer + 1]) == [("101", "102", 0, True, "Internal", "Answered")]
    top = await sim.get(CALL_LOG, **{"$filter": f"CallId eq {transfer}", "$top": "1"})
    assert [r["DestinationDn"] for r in top["value"]] == ["101"]


@pytest.mark.parametrize(
    "lie,expected",
    [
        ("answered", [("10000", "101", 0, False, "Inbound", "Unanswered")]),
        ("direction", [("10000", "101", 0, True, "Outbound", "Answered")]),
        ("answered_by", [("10000", "102", 0, True, "Inbound", "Answered")]),
    ],
)
async def test_call_log_can_be_made_wrong_on_purpose(sim: Sim, lie: str, expected: list[tuple[object, ...]]) -> None:
    number = await sim.play("inbound_answered", falsify_log=lie, ring_seconds=0.1, talk_seconds=0.1)
    await sim.wait_done(number)
    assert _segments((await sim.get(CALL_LOG, **{"$filter": f"CallId eq {number}"}))["value"]) == expected


async def test_call_log_needs_every_parameter(sim: Sim) -> None:
    await sim.wait_done(await sim.play("inbound_answered", ring_seconds=0.1, talk_seconds=0.1))
    assert len((await sim.get(CALL_LOG))["value"]) == 1
    future = CALL_LOG.replace("periodFrom=2020-01-01T00:00:00Z", "periodFrom=2099-01-01T00:00:00Z")
    assert (await sim.get(future))["value"] == []
    for name in (
        "periodFrom",
        "periodTo",
        "sourceType",
        "sourceFilter",
        "destinationType",
        "destinationFilter",
        "callsType",
        "callTimeFilterType",
        "callTimeFilterFrom",
        "callTimeFilterTo",
        "hidePcalls",
    ):
        without = re.sub(rf"[(,]{name}=[^,)]*", lambda m: m.group(0)[0] if m.group(0)[0] == "(" else "", CALL_LOG)
        body = await sim.get(without.replace("(,", "("), status=400)
        assert name in body["error"]["message"]
    await sim.get(CALL_LOG.replace("callsType=0", "callsType=2"), status=400)
    await sim.get(CALL_LOG.replace("hidePcalls=true", "hidePcalls=maybe"), status=400)
    await sim.get(CALL_LOG, status=400, **{"$filter": "Nope eq 1"})
    await sim.get("/xapi/v1/ReportCallLogData", status=404)
    await sim.get("/xapi/v1/ReportCallLogData/Pbx.Other()", status=400)
