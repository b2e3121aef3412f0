"""The XAPI call data (docs/3cx.md §5.6, §5.7): `Recordings` and their download, `ActiveCalls`, and the
reports `ReportInboundCalls`, `ReportCallLogData` and `ReportQueueCallbacks`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from . import calllog, odata
from .odata import ODataError, duration, iso
from .state import DID_RULE_NAME, EXTENSION, QUEUE, TRUNK_DID, TRUNK_DN, InboundCall, Pbx

if TYPE_CHECKING:
    from .xapi import Body, Xapi

RECORDING_FIELDS = (
    "Id",
    "StartTime",
    "EndTime",
    "CallType",
    "FromDn",
    "FromDnType",
    "FromCallerNumber",
    "FromDisplayName",
    "FromDidNumber",
    "FromCrmContact",
    "FromIdParticipant",
    "ToDn",
    "ToDnType",
    "ToCallerNumber",
    "ToDisplayName",
    "ToDidNumber",
    "ToCrmContact",
    "ToIdParticipant",
    "RefParticipantId",
    "RecordingUrl",
    "IsArchived",
    "ArchivedUrl",
    "CanBeTranscribed",
    "IsTranscribed",
    "TranscriptionResult",
    "Transcription",
    "Summary",
    "SentimentScore",
)
INBOUND_CALL_FIELDS = (
    "CallHistoryId",
    "CdrId",
    "StartTime",
    "Did",
    "RuleName",
    "TrunkName",
    "TrunkNumber",
    "SourceCallerId",
    "SourceDisplayName",
    "SourceDn",
    "DestinationDn",
    "DestinationCallerId",
    "DestinationDisplayName",
    "Status",
    "RingingDuration",
    "TalkingDuration",
    "CallDuration",
    "RecordingId",
    "RecordingUrl",
    "QualityReport",
    "SentimentScore",
    "Summary",
    "Transcription",
)
# Every parameter of Pbx.GetCallLogData is required (docs/3cx.md §5.6); the simulator serves the "all" values.
CALL_LOG_ALL = {
    "sourceType": "0",
    "sourceFilter": "",
    "destinationType": "0",
    "destinationFilter": "",
    "callsType": "0",
    "callTimeFilterType": "0",
    "callTimeFilterFrom": "0:00:0",
    "callTimeFilterTo": "0:00:0",
}


def _party_text(number: str, name: str) -> str:
    """ActiveCalls' `Caller`/`Callee` style: the number, then the name when it says more."""
    return number if not name or name == number else f"{number} {name}"


def _inbound_row(pbx: Pbx, entry: InboundCall, now: float) -> Body:
    end = entry.ended_at or now
    answered = entry.answered_at
    first = pbx.dns.get(entry.first_dn)
    return {
        "CallHistoryId": f"00000000-0000-0000-0000-{entry.callid:012d}",
        "CdrId": f"{entry.callid:08d}-cdr",
        "StartTime": iso(entry.started),
        "Did": entry.did,
        "RuleName": DID_RULE_NAME if entry.did == TRUNK_DID else "",
        "TrunkName": "Main trunk",
        "TrunkNumber": TRUNK_DN,
        "SourceCallerId": entry.caller,
        "SourceDisplayName": entry.caller_name,
        "SourceDn": TRUNK_DN,
        "DestinationDn": entry.first_dn,
        "DestinationCallerId": f"Ext.{entry.first_dn}",
        "DestinationDisplayName": first.name if first else "",
        "Status": "Answered" if answered else ("Unanswered" if entry.ended_at else "Waiting"),
        "RingingDuration": duration((answered or end) - entry.started),
        "TalkingDuration": duration(end - answered if answered else 0),
        "CallDuration": duration(end - entry.started),
        "RecordingId": entry.recording_id,
        "RecordingUrl": entry.recording_url or None,
        "QualityReport": False,
        "SentimentScore": None,
        "Summary": None,
        "Transcription": None,
    }


def _call_log_period(args: dict[str, str]) -> tuple[float, float]:
    """(periodFrom, periodTo) of GetCallLogData; ODataError names a missing or unserved parameter (the
    simulated calls have no PBX-internal rows, so hidePcalls changes nothing)."""
    start, end = odata.moment_arg(args, "periodFrom"), odata.moment_arg(args, "periodTo")
    for name in (*CALL_LOG_ALL, "hidePcalls"):
        if name not in args:
            raise ODataError(f"The {name} field is required.")
    unserved = [name for name, value in CALL_LOG_ALL.items() if args[name] != value]
    if unserved:
        raise ODataError(f"The simulator serves only the 'all' values of {', '.join(unserved)}.")
    if args["hidePcalls"] not in ("true", "false"):
        raise ODataError(f"The value '{args['hidePcalls']}' is not valid for hidePcalls.")
    return start, end


async def recordings(x: Xapi, request: web.Request) -> Body:
    rows = [r.row for r in sorted(x.pbx(request).visible_recordings(), key=lambda r: r.id)]
    return x.collection(request, "Recordings", rows, RECORDING_FIELDS)


async def recording_function(x: Xapi, request: web.Request) -> web.StreamResponse | Body:
    call = request.match_info["call"]
    if call.startswith("Pbx.GetRecordingRepositorySettings"):
        state = request.app[x.key]
        return {
            "@odata.context": "$metadata#Pbx.RecordingRepositorySettings",
            "RecordingPath": str(state.config.recordings_dir),
            "IsArchivingEnabled": False,
            "AutoDeleteRecordingDays": 0,
            "RecordingsQuota": 0,
        }
    try:
        rec_id = int(odata.call_args(call, "DownloadRecording")["recId"])
    except (ValueError, KeyError):
        raise ODataError(f"Bad request: {call}") from None
    found = next((r for r in x.pbx(request).visible_recordings() if r.id == rec_id), None)
    path = request.app[x.key].config.recordings_dir / found.path if found else None
    if found is None or path is None or not path.is_file():
        return odata.error_response(400, "WARNINGS.XAPI.FILE_NOT_FOUND", "WARNINGS.XAPI.FILE_NOT_FOUND")
    name = path.name.replace('"', "'")
    return web.FileResponse(
        path, headers={"Content-Type": "audio/x-wav", "Content-Disposition": f'attachment; filename="{name}"'}
    )


async def active_calls(x: Xapi, request: web.Request) -> Body:
    pbx = x.pbx(request)
    now = time.time()
    rows = []
    for callid, legs in sorted(pbx.live_calls().items()):
        ordered = sorted(legs, key=lambda p: p.legid)  # in the order the legs were created
        # The raw trunk legs, whose party is the number outside (Call Control shows the DN inside instead):
        # the external party's own first, then any number called out (a transfer to an outside number).
        trunks = [_party_text(p.party_caller_id, p.party_caller_name) for p in ordered if p.dn == TRUNK_DN]
        inside = [_party_text(p.dn, pbx.dns[p.dn].name) for p in ordered if p.dn != TRUNK_DN]
        outside = trunks[0] if trunks else ""
        # Once no DN inside is left on the call, the number it went on to takes the inside's place.
        onward = trunks[-1] if len(trunks) > 1 and not inside else ""
        kind = pbx.call_kinds.get(callid, "inbound")
        if kind == "outbound":
            caller, callee = (inside[0] if inside else onward), outside
        elif kind == "internal":
            caller, callee = (inside[0] if inside else ""), (inside[-1] if len(inside) > 1 else onward)
        else:
            caller, callee = outside, (inside[-1] if inside else onward)
        talking = any(p.status == "Connected" and pbx.dns[p.dn].type in (EXTENSION, QUEUE) for p in legs)
        started = pbx.call_started.get(callid, now)
        rows.append(
            {
                "Id": callid,
                "Caller": caller,
                "Callee": callee,
                "Status": "Talking" if talking else "Routing",
                "EstablishedAt": iso(started),
                "LastChangeStatus": iso(pbx.call_changed.get(callid, started)),
                "ServerNow": iso(now),
            }
        )
    return x.collection(
        request,
        "ActiveCalls",
        rows,
        ("Id", "Caller", "Callee", "Status", "EstablishedAt", "LastChangeStatus", "ServerNow"),
    )


async def inbound_calls(x: Xapi, request: web.Request) -> Body:
    args = odata.call_args(request.match_info["call"], "GetInboundCalls")
    start, end = odata.moment_arg(args, "periodFrom"), odata.moment_arg(args, "periodTo")
    trunks = [t for t in args.get("trunkDns", "").split(",") if t]
    pbx, now = x.pbx(request), time.time()
    rows = [
        _inbound_row(pbx, entry, now)
        for entry in pbx.inbound_log
        if start <= entry.started <= end and (not trunks or TRUNK_DN in trunks)
    ]
    return x.collection(request, "ReportInboundCalls", rows, INBOUND_CALL_FIELDS)


async def call_log(x: Xapi, request: web.Request) -> Body:
    """One row per DN each ended call reached, calls started in the period (calllog.py)."""
    start, end = _call_log_period(odata.call_args(request.match_info["call"], "GetCallLogData"))
    rows = request.app[x.key].player.call_log.rows(start, end)
    return x.collection(request, "ReportCallLogData", rows, calllog.FIELDS)


async def queue_callbacks(x: Xapi, request: web.Request) -> Body:
    args = odata.call_args(request.match_info["call"], "GetQueueCallbacksData")
    start, end = odata.moment_arg(args, "startDt"), odata.moment_arg(args, "endDt")
    pbx = x.pbx(request)
    wanted = [q for q in args.get("queueDnStr", "").split(",") if q]
    rows = []
    for queue in sorted(d.number for d in pbx.dns.values() if d.type == QUEUE):
        if wanted and queue not in wanted:
            continue
        count = sum(1 for c in pbx.callback_log if c["queue"] == queue and start <= c["time"] <= end)
        received = sum(1 for q, moment in pbx.queue_log if q == queue and start <= moment <= end)
        rows.append(
            {
                "QueueDnNumber": queue,
                "Dn": pbx.dns[queue].name,
                "ReceivedCount": received,
                "CallbacksCount": count,
                "FailCallbacksCount": 0,
            }
        )
    return x.collection(
        request,
        "ReportQueueCallbacks",
        rows,
        ("QueueDnNumber", "Dn", "ReceivedCount", "CallbacksCount", "FailCallbacksCount"),
    )
