"""The call graph: Call Control participant changes in, webhooks.md §2–§3 call events out. Pure, no I/O.

    graph = CallGraph(settings, facts)
    graph.upsert(participant, now); graph.remove(dn, pid, now); graph.reconcile(snapshot, now)
    for callid in graph.due(now): graph.decide(callid, now, outside=callid in active_call_numbers)
    for item in graph.drain(): publish(item.event)

One chain per 3CX call number (`callid`). A chain has legs (one per participant), a current `link`
(0 before an answer, 1 at the first answer, +1 per transfer) and an `offer_link` (the link that new
ringing carries: a transfer target's ringing is already on the new link). Decisions that need a
moment (did the call go on after a leg left? did it end?) wait `ringing_grace` and are taken by
`decide()`, which the caller runs with one fact from the PBX: whether the call still exists
outside the monitored DNs (XAPI ActiveCalls), which tells a transfer to an outside number.
Where 3CX behaviour is inferred (3cx-v20.md §4), the comment says so.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from tcxhooks.v1 import common_pb2, events_pb2

from .facts import Facts
from .participant import Participant

RINGING, STOPPED, ANSWERED, ENDED = "ringing", "ringingstopped", "answered", "ended"
_TYPES = {RINGING: events_pb2.CALL_EVENT_TYPE_RINGING, STOPPED: events_pb2.CALL_EVENT_TYPE_RINGING_STOPPED,
          ANSWERED: events_pb2.CALL_EVENT_TYPE_ANSWERED, ENDED: events_pb2.CALL_EVENT_TYPE_ENDED}
DIRECTIONS = {"incoming": common_pb2.DIRECTION_INCOMING, "outgoing": common_pb2.DIRECTION_OUTGOING,
              "internal": common_pb2.DIRECTION_INTERNAL}
_USER_TYPES = {"ext": common_pb2.USER_TYPE_EXT, "queue": common_pb2.USER_TYPE_QUEUE, "other": common_pb2.USER_TYPE_OTHER}
_TRTYPES = {"NotDef": common_pb2.TRANSFER_TYPE_NOT_DEF, "Blind": common_pb2.TRANSFER_TYPE_BLIND,
            "Accomp": common_pb2.TRANSFER_TYPE_ACCOMP}
# Who a call nobody answered is "missed at": the queue, else a ring group, else the extension (inferred ranking).
_NOT_GROUPS = frozenset({"Wextension", "Wivr", "Wroutepoint", "Wspecialmenu", "Wparkextension", "Wexternalline"})


def missed_rank(facts: Facts, dn: str) -> int:
    """How strongly a DN that rang claims a call nobody answered: the last DN of the highest rank gets its
    `Missed` end (queue 3, ring group 2, extension 1, anything else 0)."""
    kind = facts.dn_types.get(dn, "Wextension")
    user_type = facts.user_type(dn)
    return 3 if user_type == "queue" else 2 if kind not in _NOT_GROUPS else 1 if user_type == "ext" else 0


@dataclass(frozen=True)
class Settings:
    grace: float = 1.5
    ringing_stopped: bool = False
    internal_calls: bool = False
    timezone: str = ""  # IANA name; "" = the host's zone


@dataclass
class Leg:
    key: str  # "<dn>/<participant id>"
    dn: str
    user_type: str  # ext / queue / other
    status: str
    part: dict[str, Any]
    link: int
    rang: bool = False  # its ringing was emitted
    rang_at: float = 0.0
    answered_at: float = 0.0  # 0: never answered
    live: bool = True
    removed_at: float = 0.0
    ended: bool = False  # its call-ended event was emitted (answered legs)
    stopped: bool = False  # its ringing is closed (answered, or ringingstopped decided)
    stop_due: float = 0.0  # removed while ringing: ringingstopped decided then
    end_due: float = 0.0  # answered and removed: ended (transfer or not) decided then
    transfer_away: bool = False  # an attended-transfer target took its place
    trtype: str = "NotDef"


@dataclass
class Chain:
    callid: int
    stamp: str  # yyMMddHHmmss of the first sighting
    first_seen: float
    direction: str = ""
    caller_id: str = ""
    trunk: str = ""
    did: str = ""
    did_name: str = ""
    link: int = 0
    offer_link: int = 0
    offer_open: bool = False  # an offer nobody has answered yet
    offer_at: float = 0.0
    missed_user: str = ""
    missed_rank: int = -1
    talker: str = ""  # key of the leg answered at `link`
    queue: str = ""
    legs: dict[str, Leg] = field(default_factory=dict)
    end_due: float = 0.0
    seq: int = 0
    last_removed: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.stamp}_{self.callid}"

    def call_id(self, link: int) -> str:
        return f"{self.name}-{link}"

    def live(self) -> list[Leg]:
        return [leg for leg in self.legs.values() if leg.live]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chain:
        legs = {k: Leg(**v) for k, v in data.get("legs", {}).items()}
        return cls(**{**data, "legs": legs})


@dataclass
class Emitted:
    """One call event for the dispatcher; `leg` is set on an ended leg with a conversation (recordings due)."""

    chain: str
    event_id: str
    occur: float
    event: events_pb2.CallEvent
    leg: common_pb2.LegRef | None = None
    needs_did: bool = False
    needs_callback: bool = False
    callid: int = 0  # the chain's 3CX call number
    seq: int = 0  # the event's place in its chain (1 = the chain's first event)


class CallGraph:
    def __init__(self, settings: Settings, facts: Facts | None = None) -> None:
        self.settings = settings
        self.facts = facts or Facts()
        self.zone = ZoneInfo(settings.timezone) if settings.timezone else None
        self.chains: dict[int, Chain] = {}
        self.where: dict[str, int] = {}  # participant key → callid
        self.finished: dict[int, float] = {}  # callid → when it finished (late messages are ignored)
        self.out: list[Emitted] = []
        self.dirty: set[int] = set()  # callids changed since the last drain (to persist)
        self.gone: set[int] = set()  # callids finished since the last drain (to delete)
        self.anomalies: list[str] = []
        self.start_hints: dict[int, float] = {}  # callid → the PBX's start time, for calls running at start-up

    # --- persistence ---------------------------------------------------------------------------
    def restore(self, chains: list[Chain]) -> None:
        for chain in chains:
            self.chains[chain.callid] = chain
            for leg in chain.legs.values():
                if leg.live:
                    self.where[leg.key] = chain.callid

    def drain(self) -> list[Emitted]:
        out, self.out = self.out, []
        return out

    # --- input ---------------------------------------------------------------------------------
    def upsert(self, p: Participant, now: float) -> None:
        moved: Leg | None = None
        held_in = self.where.get(p.key)
        if held_in is not None and held_in != p.callid:
            # Attended transfer (3cx-v20.md §2.5/§4.5, inferred): a participant may change callid.
            moved = self._leave(held_in, p.key, now)
        if p.callid in self.finished:
            self.anomalies.append("late_message")
            return
        chain = self.chains.get(p.callid) or self._new_chain(p, now)
        leg = chain.legs.get(p.key)
        if leg is not None and not leg.live:
            self.anomalies.append("upsert_after_remove")
            return
        if leg is not None and leg.part == p.to_dict():
            self.anomalies.append("duplicate")
            return
        self.where[p.key] = p.callid
        self.dirty.add(p.callid)
        self._learn(chain, p)
        if leg is None:
            self._add(chain, p, now, moved)
        else:
            self._change(chain, leg, p, now)

    def remove(self, dn: str, pid: int, now: float) -> None:
        key = f"{dn}/{pid}"
        callid = self.where.pop(key, None)
        if callid is None or callid not in self.chains:
            self.anomalies.append("unknown_remove")
            return
        chain = self.chains[callid]
        self.dirty.add(callid)
        leg = chain.legs[key]
        leg.live = False
        leg.removed_at = chain.last_removed = now
        if leg.answered_at and not leg.ended:
            if leg.transfer_away or (leg.key == chain.talker and chain.offer_open and chain.offer_link > chain.link):
                self._ended(chain, leg, now, transfer=True)
            else:
                leg.end_due = now + self.settings.grace
        elif leg.rang and not leg.stopped and leg.user_type == "ext":
            leg.stop_due = now + self.settings.grace
        if not chain.live():
            chain.end_due = now + self.settings.grace

    def reconcile(self, snapshot: list[Participant], now: float) -> None:
        """A full `GET /callcontrol` after a (re)connect: changes applied, vanished legs ended, new ones adopted.

        The snapshot has no history, so the order is inferred: first the changes of legs we hold (an answer
        tells which ringing legs were answered elsewhere), then the legs that went (a hunt moving on, a
        transferor leaving), then new legs in the order 3CX created them (legid, then participant id).
        """
        order = sorted(snapshot, key=lambda item: (item.callid, item.legid, item.id))
        seen = {p.key for p in order}
        fresh = []
        for p in order:
            held_in = self.where.get(p.key)
            if held_in is None:
                fresh.append(p)
            elif held_in not in self.chains or self.chains[held_in].legs[p.key].part != p.to_dict():
                self.upsert(p, now)
        for key in [k for k in self.where if k not in seen]:
            dn, _, pid = key.rpartition("/")
            self.remove(dn, int(pid), now)
        for p in fresh:
            self.upsert(p, now)

    def due(self, now: float) -> list[int]:
        """Call numbers with a decision due (call `decide` for each)."""
        out = []
        for callid, chain in self.chains.items():
            if (chain.end_due and chain.end_due <= now) or any(
                    (leg.end_due and leg.end_due <= now) or (leg.stop_due and leg.stop_due <= now)
                    for leg in chain.legs.values()):
                out.append(callid)
        return out

    def needs_outside(self, callid: int, now: float) -> bool:
        """Whether `decide` depends on the call still existing outside the monitored DNs."""
        chain = self.chains.get(callid)
        return chain is not None and not chain.live() and any(
            leg.end_due and leg.end_due <= now and not leg.ended for leg in chain.legs.values())

    def decide(self, callid: int, now: float, outside: bool = False) -> None:
        chain = self.chains.get(callid)
        if chain is None:
            return
        self.dirty.add(callid)
        going_on = bool(chain.live())
        for leg in chain.legs.values():
            if leg.stop_due and leg.stop_due <= now and not leg.stopped and going_on:
                self._stop(chain, leg, now, common_pb2.RINGING_STOPPED_REASON_MOVED_ON)
        for leg in sorted(chain.legs.values(), key=lambda item: item.removed_at):
            if leg.end_due and leg.end_due <= now and not leg.ended:
                # No transfer seen within the grace: a plain hang-up, unless the PBX still has the call
                # beyond our DNs (transfer to an outside number, inferred from ActiveCalls).
                self._ended(chain, leg, leg.removed_at, transfer=outside and not going_on)
        if chain.end_due and chain.end_due <= now and not going_on:
            self._finish(chain, now)

    # --- chain life ----------------------------------------------------------------------------
    def _new_chain(self, p: Participant, now: float) -> Chain:
        began = min(now, self.start_hints.pop(p.callid, now))
        chain = Chain(p.callid, self.stamp(began), began)
        self.chains[p.callid] = chain
        return chain

    def stamp(self, moment: float) -> str:
        """The `yyMMddHHmmss` of a chain first seen at `moment`, in the PBX's zone (webhooks.md §2)."""
        local = dt.datetime.fromtimestamp(moment, self.zone) if self.zone else dt.datetime.fromtimestamp(moment).astimezone()
        return local.strftime("%y%m%d%H%M%S")

    def _learn(self, chain: Chain, p: Participant) -> None:
        """Direction, caller, trunk and DID from what a participant shows."""
        if p.external and (not chain.direction or (chain.direction == "internal" and chain.seq == 0)):
            chain.direction = "outgoing" if p.status == "Dialing" and not chain.legs else "incoming"
            chain.caller_id, chain.trunk = p.party_caller_id, p.party_dn
        elif not chain.direction:
            chain.direction = "internal"
            chain.caller_id = p.dn if p.status == "Dialing" else p.party_dn
        if chain.direction == "incoming" and not chain.did:
            # party_did is empty on extension legs (captured); a queue/IVR leg may carry it (unverified).
            chain.did = p.party_did or self.facts.trunk_did(chain.trunk)
            chain.did_name = self.facts.rule_name(chain.did) if chain.did else ""

    def _leave(self, callid: int, key: str, now: float) -> Leg | None:
        """The participant moved to another call: its leg leaves this chain (ended here as transferred)."""
        chain = self.chains.get(callid)
        self.where.pop(key, None)
        if chain is None or key not in chain.legs:
            return None
        self.dirty.add(callid)
        leg = chain.legs.pop(key)
        if leg.answered_at and not leg.ended:
            self._ended(chain, leg, now, transfer=True)
        if not chain.live():
            chain.end_due = now + self.settings.grace
            chain.last_removed = now
        return leg

    def _add(self, chain: Chain, p: Participant, now: float, moved: Leg | None) -> None:
        self._resolve_stops(chain, now)
        chain.end_due = 0.0
        leg = Leg(p.key, p.dn, self.facts.user_type(p.dn), p.status, p.to_dict(), chain.offer_link)
        chain.legs[p.key] = leg
        if p.status == "Connected" and leg.user_type == "ext":
            # Already talking without ringing here: adopted at resync, or the target of an attended transfer.
            self._answer(chain, leg, now, joined=True, moved=moved)
            return
        if p.status == "Dialing":
            if not chain.offer_open and chain.link == 0:
                chain.offer_open, chain.offer_at = True, now
            self._candidate(chain, leg)
            return
        self._offer(chain, leg, now)

    def _change(self, chain: Chain, leg: Leg, p: Participant, now: float) -> None:
        before = leg.status
        leg.part, leg.status = p.to_dict(), p.status
        if before == p.status:
            return
        self._resolve_stops(chain, now)
        if before == "Dialing" and chain.direction == "internal":
            return  # the caller's own leg of an internal call connecting: the callee's answer tells it
        if p.status == "Connected" and leg.user_type == "ext" and not leg.answered_at:
            self._answer(chain, leg, now, joined=False, moved=None)

    def _offer(self, chain: Chain, leg: Leg, now: float) -> None:
        """A DN starts ringing (queues and IVRs answer the caller to play music: their Connected is an offer)."""
        if chain.link >= 1 and not chain.offer_open:
            chain.offer_link = chain.link + 1  # a transfer begins: the target rings on the new link
        if not chain.offer_open:
            chain.offer_open, chain.offer_at = True, now
            chain.missed_user, chain.missed_rank = "", -1
        leg.link, leg.rang_at = chain.offer_link, now
        if leg.user_type == "queue":
            chain.queue = leg.dn
        self._candidate(chain, leg)
        leg.rang = self._emit(chain, RINGING, chain.offer_link, now, user=leg.dn, user_type=leg.user_type)
        for other in chain.legs.values():
            if other.key == chain.talker and other.answered_at and not other.ended and not other.live:
                self._ended(chain, other, other.removed_at, transfer=True)  # the transferor left just before

    def _candidate(self, chain: Chain, leg: Leg) -> None:
        rank = missed_rank(self.facts, leg.dn)
        if rank >= chain.missed_rank:
            chain.missed_user, chain.missed_rank = leg.dn, rank

    def _answer(self, chain: Chain, leg: Leg, now: float, joined: bool, moved: Leg | None) -> None:
        self._resolve_stops(chain, now)
        previous = chain.legs.get(chain.talker) if chain.talker else None
        if chain.link == 0:
            trtype, link = "NotDef", 1
        elif chain.offer_open and chain.offer_link > chain.link and not joined:
            trtype, link = "Blind", chain.offer_link
        else:
            # Joined already connected on a chain that had an answer: attended transfer (inferred; a blind
            # transfer answered while the monitor was disconnected looks the same).
            trtype, link = "Accomp", max(chain.offer_link, chain.link + 1)
        for other in chain.legs.values():
            if other is not leg and other.live and other.rang and not other.stopped:
                if other.user_type == "ext":
                    self._stop(chain, other, now, common_pb2.RINGING_STOPPED_REASON_ANSWERED_ELSEWHERE)
                other.stopped = True
        if trtype == "Blind" and previous is not None and not previous.ended:
            # webhooks.md §6 ex. 4: the transferor's end comes before the target's answer.
            self._ended(chain, previous, now if previous.live else previous.removed_at, transfer=True)
        chain.link = chain.offer_link = link
        chain.offer_open = False
        chain.talker = leg.key
        leg.link, leg.answered_at, leg.trtype, leg.stopped = link, now, trtype, True
        if moved is not None and moved.answered_at and moved.rang_at:
            leg.rang_at = now - (moved.answered_at - moved.rang_at)  # it rang (and answered) in the consultation
        elif not leg.rang_at:
            leg.rang_at = now
        self._emit(chain, ANSWERED, link, now, user=leg.dn, trtype=trtype)
        if trtype == "Accomp" and previous is not None and not previous.ended:
            # webhooks.md §6 ex. 5: the target's answer first, then the transferor's end.
            if previous.live:
                previous.transfer_away = True
            else:
                self._ended(chain, previous, previous.removed_at, transfer=True)

    def _resolve_stops(self, chain: Chain, now: float) -> None:
        """The call visibly goes on: legs that stopped ringing before this moved on."""
        for leg in chain.legs.values():
            if leg.stop_due and not leg.stopped:
                self._stop(chain, leg, now, common_pb2.RINGING_STOPPED_REASON_MOVED_ON)

    def _stop(self, chain: Chain, leg: Leg, now: float, reason: int) -> None:
        leg.stopped, leg.stop_due = True, 0.0
        if self.settings.ringing_stopped:
            self._emit(chain, STOPPED, leg.link, now, user=leg.dn, user_type=leg.user_type, reason=reason)

    def _ended(self, chain: Chain, leg: Leg, end: float, transfer: bool) -> None:
        leg.ended, leg.end_due = True, 0.0
        duration = max(0, round(end - leg.answered_at))
        ring = max(0, round(leg.answered_at - leg.rang_at)) if leg.rang_at else 0
        ref = common_pb2.LegRef(call_id=chain.call_id(leg.link), dn=leg.dn, participant_ids=[int(leg.part["id"])],
                                pbx_call_number=chain.callid, start_unix_ms=int(leg.answered_at * 1000),
                                end_unix_ms=int(end * 1000), caller_id=chain.caller_id)
        self._emit(chain, ENDED, leg.link, end, user=leg.dn, finish=common_pb2.FINISH_TYPE_OK, transfer=transfer,
                   duration=duration, ring=ring, leg=ref)

    def _finish(self, chain: Chain, now: float) -> None:
        for leg in chain.legs.values():
            if leg.answered_at and not leg.ended:
                self._ended(chain, leg, leg.removed_at or now, transfer=False)
        if chain.offer_open:
            end = chain.last_removed or now
            missed_queue = bool(chain.queue) and chain.missed_user == chain.queue
            self._emit(chain, ENDED, chain.offer_link, end, user=chain.missed_user,
                       finish=common_pb2.FINISH_TYPE_MISSED, transfer=False, duration=0,
                       ring=max(0, round(end - chain.offer_at)), needs_callback=missed_queue)
        del self.chains[chain.callid]
        self.finished[chain.callid] = now
        self.gone.add(chain.callid)
        for callid, when in list(self.finished.items()):
            if when < now - 600:
                del self.finished[callid]

    # --- output --------------------------------------------------------------------------------
    def reported(self, chain: Chain) -> bool:
        return chain.direction != "internal" or self.settings.internal_calls

    def _emit(self, chain: Chain, kind: str, link: int, when: float, *, user: str, user_type: str = "",
              trtype: str = "", reason: int = 0, finish: int = 0, transfer: bool = False, duration: int = 0,
              ring: int = 0, leg: common_pb2.LegRef | None = None, needs_callback: bool = False) -> bool:
        if not self.reported(chain):
            return False
        chain.seq += 1
        call_id = chain.call_id(link)
        event = events_pb2.CallEvent(
            type=_TYPES[kind], call_id=call_id, direction=DIRECTIONS[chain.direction], caller_id=chain.caller_id,
            did=chain.did if chain.direction == "incoming" else "", user=user, queue=chain.queue,
            user_type=_USER_TYPES.get(user_type, 0), transfer_type=_TRTYPES.get(trtype, 0), finish_type=finish,
            transfer=transfer, duration_seconds=duration, ring_seconds=ring, reason=reason,
            did_name=chain.did_name if chain.direction == "incoming" else "", has_callback=bool(chain.queue))
        self.out.append(Emitted(chain.name, f"{call_id}/{kind}/{user}/{chain.seq}", when, event, leg,
                                needs_did=kind == ENDED and chain.direction == "incoming" and not chain.did,
                                needs_callback=needs_callback, callid=chain.callid, seq=chain.seq))
        return True
