"""The XAPI subset of the simulator (3cx-v20.md §5): Recordings (+ download), Trunks, DidNumbers, InboundRules,
ActiveCalls, SystemStatus, ReportInboundCalls, ReportQueueCallbacks and ReportCallLogData. Users/Queues live in
`directory.py`.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from . import calllog, odata
from .calllog import duration as _duration, iso as _iso
from .state import (DID_RULE_NAME, EXTENSION, IVR, PARKING, QUEUE, RINGGROUP, ROUTEPOINT, SPECIALMENU, TRUNK,
                    TRUNK_DID, TRUNK_DN, InboundCall, Pbx)

RECORDING_FIELDS = ("Id", "StartTime", "EndTime", "CallType", "FromDn", "FromDnType", "FromCallerNumber",
                    "FromDisplayName", "FromDidNumber", "FromCrmContact", "FromIdParticipant", "ToDn", "ToDnType",
                    "ToCallerNumber", "ToDisplayName", "ToDidNumber", "ToCrmContact", "ToIdParticipant",
                    "RefParticipantId", "RecordingUrl", "IsArchived", "ArchivedUrl", "CanBeTranscribed",
                    "IsTranscribed", "TranscriptionResult", "Transcription", "Summary", "SentimentScore")
VERSION = "20.0.10.1001"
INBOUND_CALL_FIELDS = ("CallHistoryId", "CdrId", "StartTime", "Did", "RuleName", "TrunkName", "TrunkNumber",
                       "SourceCallerId", "SourceDisplayName", "SourceDn", "DestinationDn", "DestinationCallerId",
                       "DestinationDisplayName", "Status", "RingingDuration", "TalkingDuration", "CallDuration",
                       "RecordingId", "RecordingUrl", "QualityReport", "SentimentScore", "Summary", "Transcription")
PEER_TYPES = {EXTENSION: "Extension", QUEUE: "Queue", IVR: "IVR", RINGGROUP: "RingGroup", SPECIALMENU: "SpecialMenu",
              PARKING: "Parking", TRUNK: "ExternalLine", ROUTEPOINT: "RoutePoint"}

def odata_error(status: int, message: str, code: str = "") -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _party_text(number: str, name: str) -> str:
    """ActiveCalls' `Caller`/`Callee` style: the number, then the name when it says more."""
    return number if not name or name == number else f"{number} {name}"


def _inbound_row(pbx: Pbx, entry: InboundCall, now: float) -> dict[str, Any]:
    end = entry.ended_at or now
    answered = entry.answered_at
    first = pbx.dns.get(entry.first_dn)
    return {"CallHistoryId": f"00000000-0000-0000-0000-{entry.callid:012d}", "CdrId": f"{entry.callid:08d}-cdr",
            "StartTime": _iso(entry.started), "Did": entry.did,
            "RuleName": DID_RULE_NAME if entry.did == TRUNK_DID else "", "TrunkName": "Main trunk",
            "TrunkNumber": TRUNK_DN, "SourceCallerId": entry.caller, "SourceDisplayName": entry.caller_name,
            "SourceDn": TRUNK_DN, "DestinationDn": entry.first_dn, "DestinationCallerId": f"Ext.{entry.first_dn}",
            "DestinationDisplayName": first.name if first else "",
            "Status": "Answered" if answered else ("Unanswered" if entry.ended_at else "Waiting"),
            "RingingDuration": _duration((answered or end) - entry.started),
            "TalkingDuration": _duration(end - answered if answered else 0),
            "CallDuration": _duration(end - entry.started), "RecordingId": entry.recording_id,
            "RecordingUrl": entry.recording_url or None, "QualityReport": False, "SentimentScore": None,
            "Summary": None, "Transcription": None}


def _collection(request: web.Request, name: str, rows: list[dict[str, Any]], fields: tuple[str, ...]) -> web.Response:
    try:
        value, count = odata.apply(rows, request.query, fields)
    except odata.ODataError as exc:
        return odata_error(400, str(exc))
    body: dict[str, Any] = {"@odata.context": f"{request.scheme}://{request.host}/xapi/v1/$metadata#{name}"}
    if count is not None:
        body["@odata.count"] = count
    body["value"] = value
    return web.json_response(body)


_ARG = re.compile(r"\s*(\w+)\s*=\s*('(?:[^']|'')*'|[^,]*)\s*(?:,|$)")


def call_args(text: str, function: str) -> dict[str, str]:
    """`Pbx.Name(a=1,b='x')` → {"a": "1", "b": "x"}; raises ValueError if it is not that function."""
    prefix = f"Pbx.{function}("
    if not text.startswith(prefix) or not text.endswith(")"):
        raise ValueError(f"unknown function {text!r}")
    inner = text[len(prefix):-1]
    args: dict[str, str] = {}
    pos = 0
    while pos < len(inner):
        match = _ARG.match(inner, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"bad arguments in {text!r}")
        value = match.group(2).strip()
        args[match.group(1)] = value[1:-1].replace("''", "'") if value.startswith("'") else value
        pos = match.end()
    return args


def _moment(args: dict[str, str], name: str) -> float:
    if name not in args:
        raise ValueError(f"The {name} field is required.")
    try:
        moment = datetime.fromisoformat(args[name].replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"The value '{args[name]}' is not valid for {name}.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


# Every parameter of Pbx.GetCallLogData is required (3cx-v20.md §5.6); the simulator serves the "all" values.
CALL_LOG_ALL = {"sourceType": "0", "sourceFilter": "", "destinationType": "0", "destinationFilter": "",
                "callsType": "0", "callTimeFilterType": "0", "callTimeFilterFrom": "0:00:0",
                "callTimeFilterTo": "0:00:0"}


def _call_log_period(args: dict[str, str]) -> tuple[float, float]:
    """(periodFrom, periodTo) of GetCallLogData; ValueError names a missing or unserved parameter (the
    simulated calls have no PBX-internal rows, so hidePcalls changes nothing)."""
    start, end = _moment(args, "periodFrom"), _moment(args, "periodTo")
    for name in (*CALL_LOG_ALL, "hidePcalls"):
        if name not in args:
            raise ValueError(f"The {name} field is required.")
    unserved = [name for name, value in CALL_LOG_ALL.items() if args[name] != value]
    if unserved:
        raise ValueError(f"The simulator serves only the 'all' values of {', '.join(unserved)}.")
    if args["hidePcalls"] not in ("true", "false"):
        raise ValueError(f"The value '{args['hidePcalls']}' is not valid for hidePcalls.")
    return start, end


class Xapi:
    def __init__(self, state_key: web.AppKey[Any]) -> None:
        self.key = state_key

    def pbx(self, request: web.Request) -> Pbx:
        pbx: Pbx = request.app[self.key].pbx
        return pbx

    async def recordings(self, request: web.Request) -> web.Response:
        rows = [r.row for r in sorted(self.pbx(request).visible_recordings(), key=lambda r: r.id)]
        return _collection(request, "Recordings", rows, RECORDING_FIELDS)

    async def not_found(self, request: web.Request) -> web.Response:
        return odata_error(404, "No HTTP resource was found that matches the request URI.")

    async def recording_function(self, request: web.Request) -> web.StreamResponse:
        call = request.match_info["call"]
        if call.startswith("Pbx.GetRecordingRepositorySettings"):
            state = request.app[self.key]
            return web.json_response({"@odata.context": "$metadata#Pbx.RecordingRepositorySettings",
                                      "RecordingPath": str(state.config.recordings_dir), "IsArchivingEnabled": False,
                                      "AutoDeleteRecordingDays": 0, "RecordingsQuota": 0})
        try:
            args = call_args(call, "DownloadRecording")
            rec_id = int(args["recId"])
        except (ValueError, KeyError):
            return odata_error(400, f"Bad request: {call}")
        found = next((r for r in self.pbx(request).visible_recordings() if r.id == rec_id), None)
        path = request.app[self.key].config.recordings_dir / found.path if found else None
        if found is None or path is None or not path.is_file():
            return odata_error(400, "WARNINGS.XAPI.FILE_NOT_FOUND", "WARNINGS.XAPI.FILE_NOT_FOUND")
        name = path.name.replace('"', "'")
        return web.FileResponse(path, headers={"Content-Type": "audio/x-wav",
                                               "Content-Disposition": f'attachment; filename="{name}"'})

    async def trunks(self, request: web.Request) -> web.Response:
        rows = [{"Id": 1, "Number": TRUNK_DN, "Name": "Main trunk", "DidNumbers": [TRUNK_DID],
                 "ExternalNumber": TRUNK_DID, "Direction": "Both", "IsOnline": True,
                 "Gateway": {"Name": "SIP provider", "Host": "sip.example.net", "Port": 5060}}]
        return _collection(request, "Trunks", rows, ("Id", "Number", "Name", "DidNumbers", "ExternalNumber",
                                                     "Direction", "IsOnline", "Gateway"))

    async def did_numbers(self, request: web.Request) -> web.Response:
        rows = [{"Number": TRUNK_DID, "TrunkId": 1}]
        return _collection(request, "DidNumbers", rows, ("Number", "TrunkId"))

    async def inbound_rules(self, request: web.Request) -> web.Response:
        destination = {"To": "Extension", "Number": "101", "External": None, "Name": "Ivan Petrov"}
        rows = [{"Id": 1, "RuleName": DID_RULE_NAME, "Data": TRUNK_DID, "Condition": "BasedOnDID",
                 "CallType": "AllCalls", "TrunkDN": {"Id": 1, "Number": TRUNK_DN, "Name": "Main trunk",
                                                     "Type": "ExternalLine"},
                 "OfficeHoursDestination": destination, "OutOfOfficeHoursDestination": destination,
                 "HolidaysDestination": destination, "Hours": {"Type": "AllHours"}}]
        return _collection(request, "InboundRules", rows, ("Id", "RuleName", "Data", "Condition", "CallType",
                                                           "TrunkDN", "OfficeHoursDestination",
                                                           "OutOfOfficeHoursDestination", "HolidaysDestination",
                                                           "Hours"))

    async def peers(self, request: web.Request) -> web.Response:
        """Every DN with its XAPI PeerType, the way to label a DN seen in Call Control (§5.3)."""
        dns = self.pbx(request).dns.values()
        rows = [{"Id": i + 1, "Number": dn.number, "Name": dn.name, "Type": PEER_TYPES.get(dn.type, "None")}
                for i, dn in enumerate(dns)]
        return _collection(request, "Peers", rows, ("Id", "Number", "Name", "Type"))

    async def active_calls(self, request: web.Request) -> web.Response:
        pbx = self.pbx(request)
        now = time.time()
        rows = []
        for callid, legs in sorted(pbx.live_calls().items()):
            external = next((p for p in legs if p.dn == TRUNK_DN), None)
            inside = [_party_text(p.dn, pbx.dns[p.dn].name) for p in sorted(legs, key=lambda p: p.legid)
                      if p.dn != TRUNK_DN]  # in the order the legs were created
            outside = _party_text(external.party_caller_id, external.party_caller_name) if external else ""
            kind = pbx.call_kinds.get(callid, "inbound")
            if kind == "outbound":
                caller, callee = (inside[0] if inside else ""), outside
            elif kind == "internal":
                caller, callee = (inside[0] if inside else ""), (inside[-1] if len(inside) > 1 else "")
            else:
                caller, callee = outside, (inside[-1] if inside else "")
            talking = any(p.status == "Connected" and pbx.dns[p.dn].type in (EXTENSION, QUEUE) for p in legs)
            started = pbx.call_started.get(callid, now)
            rows.append({"Id": callid, "Caller": caller, "Callee": callee,
                         "Status": "Talking" if talking else "Routing", "EstablishedAt": _iso(started),
                         "LastChangeStatus": _iso(pbx.call_changed.get(callid, started)), "ServerNow": _iso(now)})
        return _collection(request, "ActiveCalls", rows, ("Id", "Caller", "Callee", "Status", "EstablishedAt",
                                                          "LastChangeStatus", "ServerNow"))

    async def system_status(self, request: web.Request) -> web.Response:
        pbx = self.pbx(request)
        return web.json_response({"@odata.context": "$metadata#Pbx.SystemStatus", "Version": VERSION,
                                  "FQDN": request.host, "CallsActive": len(pbx.live_calls()),
                                  "ExtensionsRegistered": sum(1 for d in pbx.dns.values() if d.type == EXTENSION),
                                  "RecordingQuotaReached": False, "RecordingStopped": False})

    async def inbound_calls(self, request: web.Request) -> web.Response:
        try:
            args = call_args(request.match_info["call"], "GetInboundCalls")
            start, end = _moment(args, "periodFrom"), _moment(args, "periodTo")
        except ValueError as exc:
            return odata_error(400, str(exc))
        trunks = [t for t in args.get("trunkDns", "").split(",") if t]
        pbx, now = self.pbx(request), time.time()
        rows = [_inbound_row(pbx, entry, now) for entry in pbx.inbound_log
                if start <= entry.started <= end and (not trunks or TRUNK_DN in trunks)]
        return _collection(request, "ReportInboundCalls", rows, INBOUND_CALL_FIELDS)

    async def call_log(self, request: web.Request) -> web.Response:
        """One row per DN each ended call reached, calls started in the period (calllog.py)."""
        try:
            args = call_args(request.match_info["call"], "GetCallLogData")
            start, end = _call_log_period(args)
        except ValueError as exc:
            return odata_error(400, str(exc))
        rows = request.app[self.key].player.call_log.rows(start, end)
        return _collection(request, "ReportCallLogData", rows, calllog.FIELDS)

    async def queue_callbacks(self, request: web.Request) -> web.Response:
        try:
            args = call_args(request.match_info["call"], "GetQueueCallbacksData")
            start, end = _moment(args, "startDt"), _moment(args, "endDt")
        except ValueError as exc:
            return odata_error(400, str(exc))
        pbx = self.pbx(request)
        wanted = [q for q in args.get("queueDnStr", "").split(",") if q]
        rows = []
        for queue in sorted(d.number for d in pbx.dns.values() if d.type == QUEUE):
            if wanted and queue not in wanted:
                continue
            count = sum(1 for c in pbx.callback_log if c["queue"] == queue and start <= c["time"] <= end)
            received = sum(1 for q, moment in pbx.queue_log if q == queue and start <= moment <= end)
            rows.append({"QueueDnNumber": queue, "Dn": pbx.dns[queue].name, "ReceivedCount": received,
                         "CallbacksCount": count, "FailCallbacksCount": 0})
        return _collection(request, "ReportQueueCallbacks", rows, ("QueueDnNumber", "Dn", "ReceivedCount",
                                                                   "CallbacksCount", "FailCallbacksCount"))


def add_routes(app: web.Application, state_key: web.AppKey[Any]) -> None:
    x = Xapi(state_key)
    get = app.router.add_get
    get("/xapi/v1/Recordings", x.recordings)
    get("/xapi/v1/Recordings({key})", x.not_found)  # by key is 404 on a real V20 too (§5.7)
    get("/xapi/v1/Recordings/{call:.+}", x.recording_function)
    get("/xapi/v1/Trunks", x.trunks)
    get("/xapi/v1/DidNumbers", x.did_numbers)
    get("/xapi/v1/InboundRules", x.inbound_rules)
    get("/xapi/v1/Peers", x.peers)
    get("/xapi/v1/ActiveCalls", x.active_calls)
    get("/xapi/v1/SystemStatus", x.system_status)
    get("/xapi/v1/ReportInboundCalls/{call:.+}", x.inbound_calls)
    get("/xapi/v1/ReportQueueCallbacks/{call:.+}", x.queue_callbacks)
    get("/xapi/v1/ReportCallLogData/{call:.+}", x.call_log)  # the bare entity set is 404 on a real V20 too
    get("/xapi/v1/{unknown:.*}", x.not_found)
