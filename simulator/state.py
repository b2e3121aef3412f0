"""The simulated PBX: DNs, live participants, call/leg/participant numbering, WS listeners, recordings, tokens."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any

# DN type strings as Call Control reports them (docs/3cx.md §2.3).
EXTENSION = "Wextension"
QUEUE = "Wqueue"
IVR = "Wivr"
ROUTEPOINT = "Wroutepoint"
RINGGROUP = "Wringgroup"  # spelling unconfirmed on a real PBX (docs/3cx.md §2.3)
TRUNK = "Wexternalline"
SPECIALMENU = "Wspecialmenu"
PARKING = "Wparkextension"
NONE_TYPE = "None"  # empty *_type fields read the string "None"

UPSERT = 0
REMOVE = 1

TRUNK_DN = "10000"
TRUNK_DID = "74951234567"
DID_RULE_NAME = "Main line"


@dataclass(frozen=True)
class Dn:
    number: str
    type: str
    name: str
    monitored: bool = True

    def device(self, host: str = "127.0.0.1") -> dict[str, str]:
        return {
            "dn": self.number,
            "device_id": f"sip:{self.number}@{host}:5062;rinstance=sim{self.number}",
            "user_agent": "3CX Phone for Linux 20.0" if self.type == EXTENSION else "3CX",
        }


DEFAULT_DNS: tuple[Dn, ...] = (
    Dn("101", EXTENSION, "Ivan Petrov"),
    Dn("102", EXTENSION, "Maria Sidorova"),
    Dn("103", EXTENSION, "Oleg Smirnov"),
    Dn("104", EXTENSION, "Anna Kuznetsova"),
    Dn("105", EXTENSION, "Pavel Volkov"),
    Dn("800", QUEUE, "Sales"),
    Dn("801", QUEUE, "Support"),
    Dn("700", IVR, "Main menu"),
    Dn("900", RINGGROUP, "Office"),
    Dn("999", SPECIALMENU, "Voicemail"),
    Dn("SP0", PARKING, "Park 0"),
    Dn(TRUNK_DN, TRUNK, "Main trunk", monitored=False),
)


@dataclass
class Participant:
    """One leg on one DN, exactly the Call Control JSON fields (docs/3cx.md §2.2)."""

    id: int
    status: str
    dn: str
    party_caller_name: str = ""
    party_dn: str = ""
    party_caller_id: str = ""
    party_did: str = ""
    device_id: str = ""
    party_dn_type: str = NONE_TYPE
    direct_control: bool = False
    originated_by_dn: str = ""
    originated_by_type: str = NONE_TYPE
    referred_by_dn: str = ""
    referred_by_type: str = NONE_TYPE
    on_behalf_of_dn: str = ""
    on_behalf_of_type: str = NONE_TYPE
    callid: int = 0
    legid: int = 0

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Recording:
    """One wav file as XAPI `Recordings` lists it (docs/3cx.md §5.7)."""

    id: int
    path: str  # relative to the recordings folder (= RecordingUrl)
    start: float  # unix seconds
    end: float
    visible_at: float  # monotonic moment it shows up in XAPI
    row: dict[str, Any]


@dataclass
class InboundCall:
    """One inbound external call as the PBX's inbound-calls report (ReportInboundCalls) sees it."""

    callid: int
    started: float  # unix seconds
    did: str
    caller: str
    caller_name: str
    first_dn: str  # the first monitored DN the call reached
    answered_at: float | None = None  # first extension answer
    ended_at: float | None = None
    recording_id: int | None = None
    recording_url: str = ""


@dataclass
class CallRecord:
    """A played scenario, for `GET /sim/calls`."""

    call_number: int
    scenario: str
    started: float
    done: bool = False
    error: str = ""
    call_numbers: list[int] = field(default_factory=list)
    recordings: list[int] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)  # every visible change, unix and monotonic time


DIRECTORY_TARGETS = ("Users", "Queues", "Agents", "ReportAgentLoginHistory")


@dataclass
class Fault:
    """The next `count` matching PBX API requests fail with `status`, or (`short`) answer one row short.

    A request matches by its path `prefix` (`/sim/fail`), else by the XAPI directory collection it reads
    (`target`, `/sim/directory/fail` and `/partial`; "" = any of DIRECTORY_TARGETS).
    """

    count: int
    status: int = 503
    prefix: str = ""
    target: str = ""
    short: bool = False

    def matches(self, path: str, target: str) -> bool:
        if self.prefix:
            return path.startswith(self.prefix)
        return target in DIRECTORY_TARGETS and self.target in ("", target)


class Faults:
    """The pending faults of the PBX API, taken in the order they were added (the control API adds them)."""

    def __init__(self) -> None:
        self.pending: list[Fault] = []

    def add(self, fault: Fault) -> int:
        """Adds `fault`; returns how many requests will now fail or answer short."""
        self.pending.append(fault)
        return sum(f.count for f in self.pending)

    def clear(self) -> None:
        self.pending.clear()

    def take(self, path: str, target: str, short: bool = False) -> Fault | None:
        """The first pending fault of that kind matching the request, used once."""
        for fault in self.pending:
            if fault.short == short and fault.matches(path, target):
                fault.count -= 1
                if fault.count <= 0:
                    self.pending.remove(fault)
                return fault
        return None


class Listener:
    """One WebSocket connection: its own gap-free sequence and an outbound queue of text frames."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.losing = False  # frames are numbered but never sent (a fault: the client sees a sequence gap)
        self._sequence = itertools.count(1)

    def push(self, event_type: int, entity: str, attached_data: Any = None, sequence: int | None = None) -> None:
        """One §3.2 envelope; `sequence` overrides the counter (to fake out-of-order frames)."""
        number = next(self._sequence) if sequence is None else sequence
        if self.losing:
            return
        self.queue.put_nowait(
            json.dumps(
                {
                    "sequence": number,
                    "event": {"event_type": event_type, "entity": entity, "attached_data": attached_data},
                }
            )
        )

    def push_raw(self, text: str) -> None:
        self.queue.put_nowait(text)


class Pbx:
    """All mutable PBX state. Single-threaded (asyncio), so no locks."""

    def __init__(self, dns: tuple[Dn, ...] = DEFAULT_DNS, first_call_number: int = 698) -> None:
        self.dns: dict[str, Dn] = {dn.number: dn for dn in dns}
        self.participants: dict[str, dict[int, Participant]] = {dn.number: {} for dn in dns}
        self.listeners: set[Listener] = set()
        self.recordings: list[Recording] = []
        self.calls: dict[int, CallRecord] = {}
        self.call_started: dict[int, float] = {}  # callid → unix start time (ActiveCalls)
        self.call_kinds: dict[int, str] = {}  # callid → inbound / outbound / internal (ActiveCalls)
        self.call_changed: dict[int, float] = {}  # callid → unix time of its last change (ActiveCalls)
        self.inbound_log: list[InboundCall] = []
        self.callback_log: list[dict[str, Any]] = []  # callbacks ordered: queue, unix time, caller, callid
        self.queue_log: list[tuple[str, float]] = []  # (queue, unix time) of every call reaching a queue
        self._call_numbers = itertools.count(first_call_number)
        self._participant_ids = itertools.count(1)
        self._recording_ids = itertools.count(1)
        self._legs: dict[int, itertools.count[int]] = {}
        # The party a monitored trunk's participant shows: the DN it connects the external party to (not the
        # external party itself, which is the trunk participant's own side; docs/3cx.md).
        self._trunk_parties: dict[tuple[str, int], Dn] = {}
        self._trunk_shown = any(dn.type == TRUNK and dn.monitored for dn in dns)

    # --- numbering -------------------------------------------------------------------------
    def new_call(self, kind: str, first_leg: int = 1) -> int:
        callid = next(self._call_numbers)
        self._legs[callid] = itertools.count(first_leg)
        self.call_started[callid] = time.time()
        self.call_kinds[callid] = kind
        return callid

    def new_leg(self, callid: int) -> int:
        return next(self._legs.setdefault(callid, itertools.count(1)))

    def new_participant_id(self) -> int:
        return next(self._participant_ids)

    def new_recording_id(self) -> int:
        return next(self._recording_ids)

    # --- visibility ------------------------------------------------------------------------
    def visible(self, dn: str) -> Dn | None:
        found = self.dns.get(dn)
        return found if found is not None and found.monitored else None

    def dn_info(self, dn: Dn) -> dict[str, Any]:
        return {
            "dn": dn.number,
            "type": dn.type,
            "devices": [dn.device()],
            "participants": [self.shown(p).to_json() for p in self.participants[dn.number].values()],
        }

    def shown(self, p: Participant) -> Participant:
        """The participant as Call Control shows it (a trunk participant's party is the DN inside the PBX)."""
        inside = self._trunk_parties.get((p.dn, p.id))
        if inside is None:
            return p
        return replace(
            p,
            party_dn=inside.number,
            party_dn_type=inside.type,
            party_caller_id=inside.number,
            party_caller_name=inside.name,
            party_did="",
        )

    # --- changes (each one is announced to every WebSocket) ---------------------------------
    def upsert(self, participant: Participant) -> None:
        self.participants.setdefault(participant.dn, {})[participant.id] = replace(participant)
        self.call_changed[participant.callid] = time.time()
        moved = self._trunk_views(participant.callid)
        self._announce(UPSERT, participant.dn, participant.id)
        for trunk in moved:
            if (trunk.dn, trunk.id) != (participant.dn, participant.id):
                self._announce(UPSERT, trunk.dn, trunk.id)

    def remove(self, dn: str, participant_id: int) -> Participant | None:
        gone = self.participants.get(dn, {}).pop(participant_id, None)
        if gone is not None:
            self.call_changed[gone.callid] = time.time()
            self._trunk_parties.pop((dn, participant_id), None)
            self._announce(REMOVE, dn, participant_id)
            for trunk in self._trunk_views(gone.callid):
                self._announce(UPSERT, trunk.dn, trunk.id)
            self._forget_call_if_idle(gone.callid)
        return gone

    def _trunk_views(self, callid: int) -> list[Participant]:
        """Points each trunk participant of the call at the DN it now connects to; returns those that changed.

        That DN is the extension (else any DN) talking in the call, else the first one the call reached; with
        nobody left inside, a trunk participant keeps showing the last one."""
        if not self._trunk_shown:
            return []
        legs = sorted(self.live_calls().get(callid, []), key=lambda p: p.legid)
        inside = [p for p in legs if self.dns[p.dn].type != TRUNK]
        talking = [p for p in inside if p.status == "Connected"]
        extensions = [p for p in talking if self.dns[p.dn].type == EXTENSION]
        if not inside:
            return []
        target = (extensions or talking or inside)[0]
        changed = []
        for trunk in (p for p in legs if self.dns[p.dn].type == TRUNK):
            if self._trunk_parties.get((trunk.dn, trunk.id)) != self.dns[target.dn]:
                self._trunk_parties[(trunk.dn, trunk.id)] = self.dns[target.dn]
                changed.append(trunk)
        return changed

    def _announce(self, event_type: int, dn: str, participant_id: int) -> None:
        if not self.dns[dn].monitored:
            return
        entity = f"/callcontrol/{dn}/participants/{participant_id}"
        for listener in self.listeners:
            listener.push(event_type, entity)

    def _forget_call_if_idle(self, callid: int) -> None:
        if not any(p.callid == callid for legs in self.participants.values() for p in legs.values()):
            self.call_started.pop(callid, None)
            self.call_kinds.pop(callid, None)
            self.call_changed.pop(callid, None)

    def live_calls(self) -> dict[int, list[Participant]]:
        calls: dict[int, list[Participant]] = {}
        for legs in self.participants.values():
            for p in legs.values():
                calls.setdefault(p.callid, []).append(p)
        return calls

    # --- recordings ------------------------------------------------------------------------
    def add_recording(self, recording: Recording) -> None:
        self.recordings.append(recording)

    def visible_recordings(self) -> list[Recording]:
        now = time.monotonic()
        return [r for r in self.recordings if r.visible_at <= now]
