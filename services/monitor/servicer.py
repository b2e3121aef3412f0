"""MonitorService: the calls the monitor holds, extensions, recordings of a leg and their audio, a PBX check
(with the post-call check's counts), placing a call for a CRM's click-to-call (the monitor is the only PBX
client), and captures of what it receives."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.v1 import common_pb2, monitor_service_pb2, monitor_service_pb2_grpc

from .callgraph import DIRECTIONS, CallGraph, Chain
from .capture.session import Capture
from .errors import InvalidRequest, NotFound, NotReady, PbxError, PbxHttpError
from .pbx import xapi
from .pbx.callcontrol import CallControl
from .pbx.client import PbxClient
from .pbx.makecall import make_call
from .reconcile import Reconciler

log = logging.getLogger(__name__)
LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last moment a datetime holds


def _stamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def call_message(chain: Chain) -> monitor_service_pb2.Call:
    legs = [
        monitor_service_pb2.CallLeg(
            call_id=chain.call_id(leg.link),
            dn=leg.dn,
            status=leg.status,
            party=str(leg.part.get("party_caller_id") or leg.part.get("party_dn") or ""),
        )
        for leg in chain.legs.values()
        if leg.live
    ]
    return monitor_service_pb2.Call(
        chain=chain.name,
        pbx_call_number=chain.callid,
        direction=DIRECTIONS.get(chain.direction, common_pb2.DIRECTION_UNSPECIFIED),
        caller_id=chain.caller_id,
        did=chain.did,
        link=chain.link,
        legs=legs,
        start_time=_stamp(chain.first_seen),
    )


class MonitorServicer(monitor_service_pb2_grpc.MonitorServiceServicer):
    def __init__(
        self,
        graph: CallGraph,
        pbx: PbxClient,
        callcontrol: CallControl,
        extensions: Callable[[], list[monitor_service_pb2.Extension]] | None = None,
        queues: Callable[[], list[monitor_service_pb2.Queue]] | None = None,
        reads_call_log: bool = False,
        reconciler: Reconciler | None = None,
        capture: Capture | None = None,
    ) -> None:
        self.graph = graph
        self.pbx = pbx
        self.callcontrol = callcontrol
        self.extensions = extensions
        self.queues = queues
        self.reads_call_log = reads_call_log  # the post-call check or outage recovery is on
        self.reconciler = reconciler
        self.capture = capture

    async def ListCalls(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        chains = sorted(self.graph.chains.values(), key=lambda c: (c.first_seen, c.callid))
        return monitor_service_pb2.ListCallsResponse(calls=[call_message(c) for c in chains])

    async def GetCall(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        wanted = request.chain.rsplit("-", 1)[0] if "-" in request.chain else request.chain
        for chain in self.graph.chains.values():
            if chain.name == wanted:
                return monitor_service_pb2.GetCallResponse(call=call_message(chain))
        raise NotFound(f"no live call {request.chain!r}")

    async def ListExtensions(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if self.extensions is None:
            raise NotReady("the directory has not been read yet")
        return monitor_service_pb2.ListExtensionsResponse(extensions=self.extensions())

    async def ListQueues(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if self.queues is None:
            raise NotReady("the directory has not been read yet")
        return monitor_service_pb2.ListQueuesResponse(queues=self.queues())

    async def ListRecordings(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        leg = request.leg
        if not leg.dn or not leg.start_unix_ms:
            raise InvalidRequest("leg.dn and leg.start_unix_ms are required")
        if not all(0 <= ms <= LAST_MS for ms in (leg.start_unix_ms, leg.end_unix_ms)):
            raise InvalidRequest("leg.start_unix_ms and end_unix_ms are milliseconds since 1970, before the year 10000")
        end = (leg.end_unix_ms or int(time.time() * 1000)) / 1000
        try:
            rows = await xapi.recordings(self.pbx, leg.dn, leg.start_unix_ms / 1000, end)
        except PbxError as exc:
            raise PbxError(f"cannot list recordings: {exc}") from exc
        ids = set(leg.participant_ids)

        def belongs(row: dict[str, Any]) -> bool:
            # A row naming participants must name one of the leg's (another call on the same DN may overlap
            # in time); a row naming none is matched by DN and time alone (participant ids assumed shared
            # between Call Control and XAPI Recordings: inferred).
            named = {row.get("FromIdParticipant"), row.get("ToIdParticipant")} - {None}
            return not ids or not named or bool(ids & named)

        out = []
        for row in (r for r in rows if belongs(r)):
            start, stop = xapi.parse_time(row.get("StartTime")), xapi.parse_time(row.get("EndTime"))
            info = monitor_service_pb2.RecordingInfo(
                recording_id=row["Id"], file_name=str(row.get("RecordingUrl") or "")
            )
            if start is not None:
                info.start_time.CopyFrom(_stamp(start))
            if stop is not None:
                info.end_time.CopyFrom(_stamp(stop))
            out.append(info)
        return monitor_service_pb2.ListRecordingsResponse(recordings=out)

    async def FetchRecording(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        path = f"/xapi/v1/Recordings/Pbx.DownloadRecording(recId={int(request.recording_id)})"
        try:
            async for chunk in self.pbx.stream(path):
                yield monitor_service_pb2.FetchRecordingResponse(chunk=chunk)
        except PbxHttpError as exc:
            if exc.status == 404 or "FILE_NOT_FOUND" in exc.message:
                raise NotFound(f"recording {request.recording_id} not found") from exc
            raise

    async def MakeCall(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        extension, destination = request.extension.strip(), request.destination.strip()
        if not extension or not destination.lstrip("+").isdigit():
            raise InvalidRequest("extension and destination (digits, optionally a leading +) are required")
        try:
            placed = await make_call(self.pbx, extension, destination)
        except PbxHttpError as exc:
            if exc.status == 404:
                raise NotFound(f"no DN {extension!r} in Call Control") from exc
            raise
        log.info("makecall from %s placed as PBX call %d", extension, placed.callid)
        return monitor_service_pb2.MakeCallResponse(
            chain=await self._chain_of(placed.callid),
            pbx_call_number=placed.callid,
            participant_id=placed.participant_id,
            device_id=placed.device_id,
        )

    async def _chain_of(self, callid: int, wait: float = 3.0) -> str:
        """The chain name the graph gives PBX call `callid`, once its first change arrives ("" if not in time)."""
        deadline = time.monotonic() + wait
        while True:
            chain = next((c for c in self.graph.chains.values() if c.callid == callid), None)
            if chain is not None or time.monotonic() >= deadline:
                return chain.name if chain is not None else ""
            await asyncio.sleep(0.05)

    async def CheckPbx(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        items = []

        async def check(name: str, probe: Any) -> None:
            try:
                items.append(monitor_service_pb2.CheckItem(name=name, ok=True, detail=await probe()))
            except PbxError as exc:
                items.append(monitor_service_pb2.CheckItem(name=name, ok=False, detail=str(exc)))

        async def token() -> str:
            await self.pbx.token()
            return f"token for client {self.pbx.client_id}"

        async def callcontrol() -> str:
            body = await self.pbx.get_json("/callcontrol")
            return f"{len(body) if isinstance(body, list) else 0} DNs visible to Call Control"

        async def xapi_access() -> str:
            body = await self.pbx.get_json("/xapi/v1/SystemStatus")
            return f"XAPI answers, PBX version {body.get('Version', '?') if isinstance(body, dict) else '?'}"

        await check("token", token)
        await check("callcontrol", callcontrol)
        await check("xapi", xapi_access)
        if self.reads_call_log:
            await check("calllog", lambda: xapi.call_log_readable(self.pbx))
        cc = self.callcontrol
        age = time.monotonic() - cc.last_message if cc.last_message else None
        detail = "open" if cc.connected else "not connected"
        if age is not None:
            detail += f", last message {age:.0f} s ago"
        items.append(monitor_service_pb2.CheckItem(name="websocket", ok=cc.connected, detail=detail))
        items.append(self._reconciled())
        return monitor_service_pb2.CheckPbxResponse(items=items)

    def _reconciled(self) -> monitor_service_pb2.CheckItem:
        """The post-call check's counts since start (docs/3cx.md §4.7): `counts` holds each outcome and,
        as `disagree.<field>`, what the call log reported otherwise."""
        checker = self.reconciler
        if checker is None:
            return monitor_service_pb2.CheckItem(name="reconcile", ok=True, detail="off ([pbx] reconcile = false)")
        counts = {**checker.outcomes, **{f"disagree.{f}": n for f, n in checker.disagreements.items()}}
        fields = ", ".join(f"{f} {n}" for f, n in sorted(checker.disagreements.items()))
        detail = (
            f"since start {sum(checker.outcomes.values())} ended calls checked against the PBX call log: "
            f"{checker.outcomes['agree']} agree, {checker.outcomes['disagree']} disagree"
            + (f" ({fields})" if fields else "")
            + f", {checker.outcomes['missing']} missing, "
            f"{checker.outcomes['error']} unreadable, {checker.outcomes['dropped']} dropped"
        )
        if not checker.enabled:
            detail += "; off since the call log answered 403 (System Owner rights needed)"
        return monitor_service_pb2.CheckItem(name="reconcile", ok=checker.enabled, detail=detail, counts=counts)

    async def Capture(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        if self.capture is None:
            raise NotReady("this monitor cannot be captured")
        async for line in self.capture.lines(request.seconds):
            yield monitor_service_pb2.CaptureRecord(line=line)
