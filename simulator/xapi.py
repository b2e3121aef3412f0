"""The XAPI subset of the simulator (docs/3cx.md §5): Recordings (+ download), Trunks, DidNumbers, InboundRules,
Peers, ActiveCalls, SystemStatus, the reports (inbound calls, queue callbacks, call log, agent logins) and the
directory (`Users`, `Queues`, `Queues({Id})/Agents` and their PATCH writes, data in `directory.py`).

Every handler answers a JSON body or raises: `ODataError` and `DirectoryError` are 400, `KeyError` is 404, as
OData error objects (`odata.error_response`). Tokens and scheduled faults are checked before (server.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import calllog, odata
from .directory import LOGGED_IN, LOGGED_OUT, Directory, DirectoryError, Queue, User
from .odata import ODataError, duration, iso
from .state import (
    DID_RULE_NAME,
    EXTENSION,
    IVR,
    PARKING,
    QUEUE,
    RINGGROUP,
    ROUTEPOINT,
    SPECIALMENU,
    TRUNK,
    TRUNK_DID,
    TRUNK_DN,
    InboundCall,
    Pbx,
)

BASE = "/xapi/v1/"
VERSION = "20.0.10.1001"
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
USER_FIELDS = tuple(User(0, "", "", "").to_json())
QUEUE_FIELDS = (*Queue(0, "", "").to_json(), "Agents")
AGENT_FIELDS = ("Id", "Number", "Name", "SkillGroup", "Tags")
HISTORY_FIELDS = (
    "QueueNo",
    "AgentNo",
    "Agent",
    "Day",
    "loggedInDt",
    "LoggedOutDt",
    "LoggedInInterval",
    "LoggedInDayInterval",
    "LoggedInTotalInterval",
    "TalkingInterval",
    "TalkingDayInterval",
    "TalkingTotalInterval",
)
PEER_TYPES = {
    EXTENSION: "Extension",
    QUEUE: "Queue",
    IVR: "IVR",
    RINGGROUP: "RingGroup",
    SPECIALMENU: "SpecialMenu",
    PARKING: "Parking",
    TRUNK: "ExternalLine",
    ROUTEPOINT: "RoutePoint",
}
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
_USER_PATCH = {"CurrentProfileName", "QueueStatus", "FirstName", "LastName", "EmailAddress"}
_NOT_FOUND = "No HTTP resource was found that matches the request URI."
Body = dict[str, Any]


def target_of(path: str) -> str:
    """The collection an XAPI path reads: `/xapi/v1/Queues(3)/Agents` → Agents, `…/ReportX/Pbx.F(…)` → ReportX."""
    if not path.startswith(BASE):
        return ""
    names = [part.split("(")[0] for part in path[len(BASE) :].split("/") if part and not part.startswith("Pbx.")]
    return names[-1] if names else ""


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


def _by_key(items: Any, key: int | str, text: str) -> Any:
    """The user or queue whose Id (int key) or Number (string key) it is; KeyError (404) otherwise."""
    found = next((i for i in items if (i.id == key if isinstance(key, int) else i.number == key)), None)
    if found is None:
        raise KeyError(text)
    return found


def _serve(
    target: str, handler: Callable[[web.Request], Awaitable[Any]]
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Turns a handler's body (or exception) into the XAPI answer: JSON, 204 for a write, or an OData error."""

    async def serve(request: web.Request) -> web.StreamResponse:
        try:
            body = await handler(request)
        except (ODataError, DirectoryError) as exc:
            return odata.error_response(400, str(exc), "BadRequest")
        except KeyError as exc:
            return odata.error_response(404, f"{target} {exc.args[0]} not found", "WARNINGS.XAPI.NOT_FOUND")
        if isinstance(body, web.StreamResponse):
            return body
        if body is None:
            return web.Response(status=204)
        return web.json_response(body, dumps=functools.partial(json.dumps, ensure_ascii=False))

    return serve


class Xapi:
    def __init__(self, state_key: web.AppKey[Any]) -> None:
        self.key = state_key

    def pbx(self, request: web.Request) -> Pbx:
        pbx: Pbx = request.app[self.key].pbx
        return pbx

    def directory(self, request: web.Request) -> Directory:
        directory: Directory = request.app[self.key].directory
        return directory

    def collection(
        self, request: web.Request, target: str, rows: list[Body], fields: tuple[str, ...], context: str = ""
    ) -> Body:
        """An OData collection reply; a scheduled `/sim/directory/partial` fault makes it one row short."""
        short = request.app[self.key].faults.take(request.path, target, short=True) is not None
        value, count = odata.apply(rows, request.query, fields, short=short)
        body: Body = {"@odata.context": f"{request.scheme}://{request.host}/xapi/v1/$metadata#{context or target}"}
        if count is not None:
            body["@odata.count"] = count
        body["value"] = value
        return body

    # --- calls, recordings, trunks ------------------------------------------------------------
    async def recordings(self, request: web.Request) -> Body:
        rows = [r.row for r in sorted(self.pbx(request).visible_recordings(), key=lambda r: r.id)]
        return self.collection(request, "Recordings", rows, RECORDING_FIELDS)

    async def not_found(self, request: web.Request) -> web.Response:
        return odata.error_response(404, _NOT_FOUND)

    async def recording_function(self, request: web.Request) -> web.StreamResponse | Body:
        call = request.match_info["call"]
        if call.startswith("Pbx.GetRecordingRepositorySettings"):
            state = request.app[self.key]
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
        found = next((r for r in self.pbx(request).visible_recordings() if r.id == rec_id), None)
        path = request.app[self.key].config.recordings_dir / found.path if found else None
        if found is None or path is None or not path.is_file():
            return odata.error_response(400, "WARNINGS.XAPI.FILE_NOT_FOUND", "WARNINGS.XAPI.FILE_NOT_FOUND")
        name = path.name.replace('"', "'")
        return web.FileResponse(
            path, headers={"Content-Type": "audio/x-wav", "Content-Disposition": f'attachment; filename="{name}"'}
        )

    async def trunks(self, request: web.Request) -> Body:
        rows = [
            {
                "Id": 1,
                "Number": TRUNK_DN,
                "Name": "Main trunk",
                "DidNumbers": [TRUNK_DID],
                "ExternalNumber": TRUNK_DID,
                "Direction": "Both",
                "IsOnline": True,
                "Gateway": {"Name": "SIP provider", "Host": "sip.example.net", "Port": 5060},
            }
        ]
        return self.collection(request, "Trunks", rows, tuple(rows[0]))

    async def did_numbers(self, request: web.Request) -> Body:
        return self.collection(request, "DidNumbers", [{"Number": TRUNK_DID, "TrunkId": 1}], ("Number", "TrunkId"))

    async def inbound_rules(self, request: web.Request) -> Body:
        destination = {"To": "Extension", "Number": "101", "External": None, "Name": "Ivan Petrov"}
        rows = [
            {
                "Id": 1,
                "RuleName": DID_RULE_NAME,
                "Data": TRUNK_DID,
                "Condition": "BasedOnDID",
                "CallType": "AllCalls",
                "TrunkDN": {"Id": 1, "Number": TRUNK_DN, "Name": "Main trunk", "Type": "ExternalLine"},
                "OfficeHoursDestination": destination,
                "OutOfOfficeHoursDestination": destination,
                "HolidaysDestination": destination,
                "Hours": {"Type": "AllHours"},
            }
        ]
        return self.collection(request, "InboundRules", rows, tuple(rows[0]))

    async def peers(self, request: web.Request) -> Body:
        """Every DN with its XAPI PeerType, the way to label a DN seen in Call Control (§5.3)."""
        dns = self.pbx(request).dns.values()
        rows = [
            {"Id": i + 1, "Number": dn.number, "Name": dn.name, "Type": PEER_TYPES.get(dn.type, "None")}
            for i, dn in enumerate(dns)
        ]
        return self.collection(request, "Peers", rows, ("Id", "Number", "Name", "Type"))

    async def active_calls(self, request: web.Request) -> Body:
        pbx = self.pbx(request)
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
        return self.collection(
            request,
            "ActiveCalls",
            rows,
            ("Id", "Caller", "Callee", "Status", "EstablishedAt", "LastChangeStatus", "ServerNow"),
        )

    async def system_status(self, request: web.Request) -> Body:
        pbx = self.pbx(request)
        return {
            "@odata.context": "$metadata#Pbx.SystemStatus",
            "Version": VERSION,
            "FQDN": request.host,
            "CallsActive": len(pbx.live_calls()),
            "ExtensionsRegistered": sum(1 for d in pbx.dns.values() if d.type == EXTENSION),
            "RecordingQuotaReached": False,
            "RecordingStopped": False,
        }

    # --- reports --------------------------------------------------------------------------------
    async def inbound_calls(self, request: web.Request) -> Body:
        args = odata.call_args(request.match_info["call"], "GetInboundCalls")
        start, end = odata.moment_arg(args, "periodFrom"), odata.moment_arg(args, "periodTo")
        trunks = [t for t in args.get("trunkDns", "").split(",") if t]
        pbx, now = self.pbx(request), time.time()
        rows = [
            _inbound_row(pbx, entry, now)
            for entry in pbx.inbound_log
            if start <= entry.started <= end and (not trunks or TRUNK_DN in trunks)
        ]
        return self.collection(request, "ReportInboundCalls", rows, INBOUND_CALL_FIELDS)

    async def call_log(self, request: web.Request) -> Body:
        """One row per DN each ended call reached, calls started in the period (calllog.py)."""
        start, end = _call_log_period(odata.call_args(request.match_info["call"], "GetCallLogData"))
        rows = request.app[self.key].player.call_log.rows(start, end)
        return self.collection(request, "ReportCallLogData", rows, calllog.FIELDS)

    async def queue_callbacks(self, request: web.Request) -> Body:
        args = odata.call_args(request.match_info["call"], "GetQueueCallbacksData")
        start, end = odata.moment_arg(args, "startDt"), odata.moment_arg(args, "endDt")
        pbx = self.pbx(request)
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
        return self.collection(
            request,
            "ReportQueueCallbacks",
            rows,
            ("QueueDnNumber", "Dn", "ReceivedCount", "CallbacksCount", "FailCallbacksCount"),
        )

    async def login_history(self, request: web.Request) -> Body:
        args = odata.call_args(request.match_info["call"], "GetAgentLoginHistoryData")
        missing = [n for n in ("clientTimeZone", "startDt", "endDt", "queueDnStr", "agentDnStr") if n not in args]
        if missing:
            raise ODataError(f"GetAgentLoginHistoryData needs {', '.join(missing)}")
        start, end = (dt.datetime.fromtimestamp(odata.moment_arg(args, name), dt.UTC) for name in ("startDt", "endDt"))
        rows = self.directory(request).history(
            start,
            end,
            odata.zone_arg(args["clientTimeZone"]),
            {q for q in args["queueDnStr"].split(",") if q},
            {a for a in args["agentDnStr"].split(",") if a},
        )
        return self.collection(
            request, "ReportAgentLoginHistory", rows, HISTORY_FIELDS, "Collection(Pbx.AgentLoginHistory)"
        )

    # --- directory ------------------------------------------------------------------------------
    async def users(self, request: web.Request) -> Body:
        if request.query.get("$expand"):
            raise ODataError("Users supports no $expand here")
        rows = [u.to_json() for u in self.directory(request).users.values()]
        return self.collection(request, "Users", rows, USER_FIELDS)

    async def user(self, request: web.Request) -> Body:
        text = request.match_info["key"]
        row = _by_key(self.directory(request).users.values(), odata.key_arg(text), text).to_json()
        if request.query.get("$select"):
            row = odata.apply([row], {"$select": request.query["$select"]}, USER_FIELDS)[0][0]
        return {"@odata.context": f"{request.scheme}://{request.host}/xapi/v1/$metadata#Users/$entity", **row}

    def _queue(self, request: web.Request) -> Queue:
        text = request.match_info["key"]
        queue: Queue = _by_key(self.directory(request).queues.values(), odata.key_arg(text), text)
        return queue

    @staticmethod
    def _expand_agents(request: web.Request) -> bool:
        expand = request.query.get("$expand", "").strip()
        if expand not in ("", "Agents"):
            raise ODataError(f"Queues supports $expand=Agents only, got {expand!r}")
        return expand == "Agents"

    async def queues(self, request: web.Request) -> Body:
        directory, expand = self.directory(request), self._expand_agents(request)
        rows = [directory.queue_json(q, expand) for q in directory.queues.values()]
        return self.collection(request, "Queues", rows, QUEUE_FIELDS)

    async def queue(self, request: web.Request) -> Body:
        row = self.directory(request).queue_json(self._queue(request), self._expand_agents(request))
        return {"@odata.context": f"{request.scheme}://{request.host}/xapi/v1/$metadata#Queues/$entity", **row}

    async def agents(self, request: web.Request) -> Body:
        rows = [self.directory(request).agent_json(a) for a in self._queue(request).agents]
        return self.collection(request, "Agents", rows, AGENT_FIELDS)

    async def patch_user(self, request: web.Request) -> None:
        """`PATCH /Users({Id})` with the fields the simulator models (docs/3cx.md §5.2)."""
        directory, text = self.directory(request), request.match_info["key"]
        user: User = _by_key(directory.users.values(), odata.key_arg(text), text)
        body = await _json_object(request)
        unsupported = sorted(set(body) - _USER_PATCH)
        if unsupported:
            raise ODataError(f"the simulator cannot change {', '.join(unsupported)}")
        if any(not isinstance(body[k], str) for k in body):
            raise ODataError("values must be strings")
        if "QueueStatus" in body and body["QueueStatus"] not in (LOGGED_IN, LOGGED_OUT):
            raise ODataError(f"QueueStatus must be {LOGGED_IN} or {LOGGED_OUT}")
        if {"FirstName", "LastName", "EmailAddress"} & set(body):
            directory.rename(user.number, body.get("FirstName"), body.get("LastName"), body.get("EmailAddress"))
        if "CurrentProfileName" in body:
            directory.set_profile(user.number, body["CurrentProfileName"])
        if "QueueStatus" in body:
            directory.set_queue_login(user.number, body["QueueStatus"] == LOGGED_IN)

    async def patch_queue(self, request: web.Request) -> None:
        """`PATCH /Queues({Id})` with the whole `Agents` array (membership changes, docs/3cx.md §5.3)."""
        directory, queue = self.directory(request), self._queue(request)
        body = await _json_object(request)
        agents = body.get("Agents")
        if (
            set(body) != {"Agents"}
            or not isinstance(agents, list)
            or not all(isinstance(a, dict) and isinstance(a.get("Number"), str) for a in agents)
        ):
            raise ODataError('the simulator changes queues only by {"Agents": [{"Number": "…"}, …]}')
        wanted = [a["Number"] for a in agents]
        for number in wanted:
            directory.user(number)
        for number in [a for a in queue.agents if a not in wanted]:
            directory.remove_agent(queue.number, number)
        for number in wanted:
            if number not in queue.agents:
                directory.add_agent(queue.number, number)


async def _json_object(request: web.Request) -> Body:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ODataError("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ODataError("body must be a JSON object")
    return body


def add_routes(app: web.Application, state_key: web.AppKey[Any]) -> None:
    x = Xapi(state_key)
    get = app.router.add_get
    for path, target, handler in (
        ("Recordings", "Recordings", x.recordings),
        ("Recordings({key})", "Recordings", x.not_found),  # by key is 404 on a real V20 too (§5.7)
        ("Recordings/{call:.+}", "Recordings", x.recording_function),
        ("Trunks", "Trunks", x.trunks),
        ("DidNumbers", "DidNumbers", x.did_numbers),
        ("InboundRules", "InboundRules", x.inbound_rules),
        ("Peers", "Peers", x.peers),
        ("ActiveCalls", "ActiveCalls", x.active_calls),
        ("SystemStatus", "SystemStatus", x.system_status),
        ("ReportInboundCalls/{call:.+}", "ReportInboundCalls", x.inbound_calls),
        ("ReportQueueCallbacks/{call:.+}", "ReportQueueCallbacks", x.queue_callbacks),
        ("ReportCallLogData/{call:.+}", "ReportCallLogData", x.call_log),  # the bare set is 404 on a V20 too
        ("ReportAgentLoginHistory/{call:.+}", "ReportAgentLoginHistory", x.login_history),
        ("Users", "Users", x.users),
        ("Users({key})", "Users", x.user),
        ("Queues", "Queues", x.queues),
        ("Queues({key})", "Queues", x.queue),
        ("Queues({key})/Agents", "Agents", x.agents),
    ):
        get(BASE + path, _serve(target, handler))
    app.router.add_patch(BASE + "Users({key})", _serve("Users", x.patch_user))
    app.router.add_patch(BASE + "Queues({key})", _serve("Queues", x.patch_queue))
    get(BASE + "{unknown:.*}", x.not_found)
