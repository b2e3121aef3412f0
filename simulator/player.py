"""Plays a `Script` against the `Pbx`: participants appear, change and go; recordings are written like 3CX's."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import audio
from .calllog import CallLog
from .legs import Legs
from .odata import iso
from .state import EXTENSION, QUEUE, TRUNK, TRUNK_DN, CallRecord, InboundCall, Participant, Pbx, Recording
from .steps import Later, OrderCallback, Remove, Script, SplitRecording, Upsert, Wait

LOG = logging.getLogger("tcxhooks.simulator.player")
MAX_CALL_RECORDS = 20_000


@dataclass
class _Segment:
    started: float  # unix
    started_mono: float
    participant: Participant  # the leg's state when the segment began


def _recorded(p: Participant, pbx: Pbx) -> bool:
    """3CX records an extension's leg while it talks to an external party (a status it does not document is
    taken as still talking)."""
    return pbx.dns[p.dn].type == EXTENSION and p.status not in ("Ringing", "Dialing") and p.party_dn_type == TRUNK


class Player:
    """Runs scenarios concurrently; each one is an asyncio task."""

    def __init__(self, pbx: Pbx, recordings_dir: Path, recording_delay: float = 0.3, record: bool = True) -> None:
        self.pbx = pbx
        self.recordings_dir = recordings_dir
        self.recording_delay = recording_delay
        self.record = record
        self.call_log = CallLog(pbx.dns)
        self.tasks: set[asyncio.Task[None]] = set()
        self.drop_sockets: Callable[[], Awaitable[int]] | None = None  # set by the server: cuts every WebSocket

    def start(
        self, script: Script, gap: float = 0.05, record: bool | None = None, drop_after: frozenset[int] = frozenset()
    ) -> CallRecord:
        """Allocates the first call's number now and plays the rest in the background.

        `drop_after`: cut every WebSocket right after the n-th visible change (1-based) of this call.
        """
        parts = Legs(self.pbx, script)
        number = parts.callid(next(iter(script.calls)))
        record_row = CallRecord(number, script.name, time.time(), call_numbers=[number])
        self.pbx.calls[number] = record_row
        if script.falsify_log:
            self.call_log.falsify(number, script.falsify_log)
        self._forget_old_calls()
        run = _Run(self, script, parts, record_row, gap, self.record if record is None else record, drop_after)
        task = asyncio.get_running_loop().create_task(run.play(), name=f"scenario-{record_row.call_number}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return record_row

    def _forget_old_calls(self) -> None:
        """Keeps `/sim/calls` bounded on a long-running simulator: the oldest finished calls go first."""
        excess = len(self.pbx.calls) - MAX_CALL_RECORDS
        gone: list[int] = []
        for number, row in self.pbx.calls.items():
            if len(gone) >= excess:
                break
            if row.done:
                gone.append(number)
        for number in gone:
            del self.pbx.calls[number]

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class _Run:
    def __init__(
        self,
        player: Player,
        script: Script,
        parts: Legs,
        record_row: CallRecord,
        gap: float,
        record: bool,
        drop_after: frozenset[int],
    ) -> None:
        self.player = player
        self.pbx = player.pbx
        self.script = script
        self.row = record_row
        self.gap = gap
        self.drop_after = drop_after
        self.changes = 0  # visible changes so far
        self.last_visible = -gap  # monotonic moment of the last visible change
        self.record = record
        self.parts = parts
        parts.on_call = self._new_call
        self.legs = parts.legs
        self.segments: dict[str, _Segment] = {}
        self.writes: list[asyncio.Task[None]] = []
        self.later: set[asyncio.Task[None]] = set()
        self.inbound: dict[int, InboundCall] = {}  # callid → its inbound-calls report entry
        self.visible_at = 0.0  # when the last recording of this run shows in XAPI (monotonic)

    def _new_call(self, name: str, callid: int) -> None:
        self.row.call_numbers.append(callid)
        self._log_inbound(name)

    async def play(self) -> None:
        try:
            self._log_inbound(next(iter(self.script.calls)))
            for step in self.script.steps:
                if isinstance(step, Wait):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Upsert):
                    await self._upsert(step)
                elif isinstance(step, Remove):
                    await self._remove(step.leg)
                elif isinstance(step, Later):
                    task = asyncio.get_running_loop().create_task(self._later(step))
                    self.later.add(task)
                    task.add_done_callback(self.later.discard)
                elif isinstance(step, SplitRecording):
                    self._split(step.leg)
                elif isinstance(step, OrderCallback):
                    self.pbx.callback_log.append(
                        {
                            "queue": step.queue,
                            "time": time.time(),
                            "caller": self._caller(),
                            "callid": self.parts.callid("A"),
                        }
                    )
            for leg in list(self.legs):  # a script never leaves legs behind
                await self._remove(leg)
            if self.writes:  # done = every wav written and visible in XAPI
                await asyncio.gather(*self.writes)
                await asyncio.sleep(max(0.0, self.visible_at - time.monotonic()))
        except asyncio.CancelledError:
            self.row.error = "cancelled"
            raise
        except Exception as exc:  # a broken script must not take the server down
            LOG.exception("scenario %s (call %s) failed", self.script.name, self.row.call_number)
            self.row.error = f"{type(exc).__name__}: {exc}"
        finally:
            for task in list(self.later):
                task.cancel()
            self.row.done = True

    async def _later(self, step: Later) -> None:
        await asyncio.sleep(step.seconds)
        await self._remove(step.step.leg)

    def _caller(self) -> str:
        leg = self.legs.get("A:caller")
        return leg.party_caller_id if leg else ""

    def _log_inbound(self, name: str) -> None:
        """An inbound-calls report entry per inbound call: DID, caller, first monitored DN reached."""
        if self.script.calls.get(name) != "inbound":
            return
        upserts = [s for s in self.script.steps if isinstance(s, Upsert) and s.call == name]
        trunk = next((s.fields for s in upserts if s.dn == TRUNK_DN), {})
        entry = InboundCall(
            self.parts.calls[name],
            time.time(),
            self.script.did,
            str(trunk.get("party_caller_id", "")),
            str(trunk.get("party_caller_name", "")),
            next((s.dn for s in upserts if s.dn != TRUNK_DN), ""),
        )
        self.inbound[self.parts.calls[name]] = entry
        self.pbx.inbound_log.append(entry)

    async def _before_change(self, dn: str) -> bool:
        """Keeps visible changes `gap` apart, so changes 3CX makes "at once" still reach a client in this order;
        changes nobody sees (a trunk nobody monitors) happen at once. True when the change is visible."""
        if not self.pbx.dns[dn].monitored:
            return False
        await asyncio.sleep(max(0.0, self.last_visible + self.gap - time.monotonic()))
        return True

    async def _upsert(self, step: Upsert) -> None:
        visible = await self._before_change(step.dn)
        if step.leg not in self.legs and self.pbx.dns[step.dn].type == QUEUE:
            self.pbx.queue_log.append((step.dn, time.time()))
        current = self.parts.upsert(step)
        entry = self.inbound.get(current.callid)
        if (
            entry
            and entry.answered_at is None
            and current.status == "Connected"
            and self.pbx.dns[step.dn].type == EXTENSION
        ):
            entry.answered_at = time.time()
        self._track_recording(step.leg, current)
        self.player.call_log.seen(current, self.script.calls.get(step.call, "internal"), time.time())
        if visible:
            await self._after_change("U", current)

    async def _remove(self, leg: str) -> None:
        current = self.legs.get(leg)
        if current is None:
            return
        visible = await self._before_change(current.dn)
        if self.parts.remove(leg) is None:  # removed meanwhile (a device's later removal)
            return
        self._finish_segment(leg)
        self.player.call_log.gone(current.id, time.time())
        entry = self.inbound.get(current.callid)
        if entry and not any(p.callid == current.callid for p in self.legs.values()):
            entry.ended_at = time.time()
        if visible:
            await self._after_change("R", current)

    async def _after_change(self, kind: str, p: Participant) -> None:
        self.changes += 1
        self.last_visible = time.monotonic()
        entity = f"/callcontrol/{p.dn}/participants/{p.id}"
        self.row.changes.append(
            {
                "time": time.time(),
                "monotonic": self.last_visible,
                "kind": kind,
                "entity": entity,
                "status": p.status if kind == "U" else "",
                "callid": p.callid,
            }
        )
        if self.changes in self.drop_after and self.player.drop_sockets is not None:
            await self.player.drop_sockets()

    # --- recordings ------------------------------------------------------------------------
    def _track_recording(self, leg: str, p: Participant) -> None:
        if not self.record:
            return
        recording = _recorded(p, self.pbx)
        if recording and leg not in self.segments:
            self.segments[leg] = _Segment(time.time(), time.monotonic(), p)
        elif not recording and leg in self.segments:
            self._finish_segment(leg)

    def _split(self, leg: str) -> None:
        if leg in self.segments:
            p = self.segments[leg].participant
            self._finish_segment(leg)
            self.segments[leg] = _Segment(time.time(), time.monotonic(), p)

    def _finish_segment(self, leg: str) -> None:
        segment = self.segments.pop(leg, None)
        if segment is None:
            return
        seconds = time.monotonic() - segment.started_mono
        p = segment.participant
        trunk = next((t.id for t in self.legs.values() if t.dn == TRUNK_DN and t.callid == p.callid), None)
        task = asyncio.get_running_loop().create_task(self._write(segment, seconds, trunk))
        self.writes.append(task)

    async def _write(self, segment: _Segment, seconds: float, trunk_participant: int | None) -> None:
        p = segment.participant
        rec_id = self.pbx.new_recording_id()
        ext_name = self.pbx.dns[p.dn].name
        inbound = self.script.calls.get(self.parts.call_name(p.callid)) != "outbound"
        stamp = datetime.fromtimestamp(segment.started, UTC).strftime("%Y%m%d%H%M%S")
        if inbound:
            name = f"[{p.party_caller_name}]_{p.party_caller_id}-{p.dn}_{stamp}({rec_id}).wav"
        else:
            name = f"[{ext_name}]_{p.dn}-{p.party_caller_id}_{stamp}({rec_id}).wav"
        relative = f"{p.dn}/{_safe(name)}"
        try:
            await asyncio.to_thread(audio.write_wav, self.player.recordings_dir / relative, seconds)
        except OSError as exc:
            LOG.error("cannot write recording %s: %s", relative, exc)
            self.row.error = f"recording not written: {exc}"
            return
        end = segment.started + seconds
        delay = self.script.recording_delay if self.script.recording_delay is not None else self.player.recording_delay
        external = {
            "Dn": TRUNK_DN,
            "DnType": 1,
            "CallerNumber": p.party_caller_id,
            "DisplayName": p.party_caller_name,
            "DidNumber": "",
            "IdParticipant": trunk_participant,
            "CrmContact": None,
        }
        internal = {
            "Dn": p.dn,
            "DnType": 0,
            "CallerNumber": f"Ext.{p.dn}",
            "DisplayName": ext_name,
            "DidNumber": self.script.did if inbound else "",
            "IdParticipant": p.id,
            "CrmContact": None,
        }
        source, target = (external, internal) if inbound else (internal, external)
        row = {
            "Id": rec_id,
            "StartTime": iso(segment.started, timespec="milliseconds"),
            "EndTime": iso(end, timespec="milliseconds"),
            "CallType": "InboundExternal" if inbound else "OutboundExternal",
            **{f"From{k}": v for k, v in source.items()},
            **{f"To{k}": v for k, v in target.items()},
            "RefParticipantId": None,
            "RecordingUrl": relative,
            "IsArchived": False,
            "ArchivedUrl": None,
            "CanBeTranscribed": False,
            "IsTranscribed": False,
            "TranscriptionResult": None,
            "Transcription": None,
            "Summary": None,
            "SentimentScore": None,
        }
        visible_at = time.monotonic() + delay
        self.visible_at = max(self.visible_at, visible_at)
        self.pbx.add_recording(Recording(rec_id, relative, segment.started, end, visible_at, row))
        entry = self.inbound.get(p.callid)
        if entry and entry.recording_id is None:
            entry.recording_id, entry.recording_url = rec_id, relative
        self.row.recordings.append(rec_id)


def _safe(name: str) -> str:
    return "".join("_" if ch in "/\\\0" else ch for ch in name)
