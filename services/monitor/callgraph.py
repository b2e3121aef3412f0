"""The call graph: Call Control participant changes in, docs/webhooks.md §2–§3 call events out. Pure, no I/O.

    graph = CallGraph(settings, facts)
    graph.upsert(participant, now); graph.remove(dn, pid, now); graph.reconcile(snapshot, now)
    graph.settle(now, listed=active_call_numbers(graph.settling()))    # at once, whenever settling() has calls
    for callid in graph.due(now): graph.decide(callid, now, listed=active_call_parties)
    for item in graph.drain(): publish(item.event)

One chain per 3CX call (chain.py); `progress.py` turns its legs' changes into events. This module routes
participants to chains (a participant may move to another call, or continue under a new id) and times the
decisions. When the last user leg of a call has left, the call is over as soon as the PBX shows it: it no
longer lists the call (XAPI ActiveCalls, which the caller asks at once: `settling()` / `settle()`), or the
external party's own leg left (a monitored trunk). Only while the call may still go on — the PBX still lists
it, or the user who talked is in a consultation call that may yet take the caller over — the decision waits
`grace` and is taken by `decide()`, with one fact from the PBX: whether the call still exists outside the
monitored DNs, which tells a transfer to an outside number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from zoneinfo import ZoneInfo

from tcxhooks.v1 import common_pb2

from .callevents import DIRECTIONS, Emitted
from .chain import Chain, Leg
from .consultation import consulting, taken_over
from .direction import learn
from .facts import Facts
from .participant import Participant
from .progress import Progress, Settings, missed_rank

__all__ = ["DIRECTIONS", "CallGraph", "Chain", "Emitted", "Leg", "Settings", "missed_rank"]
FORGET_AFTER = 600.0  # seconds a finished call's number (and its leftover participants) are remembered


class CallGraph:
    def __init__(self, settings: Settings, facts: Facts | None = None) -> None:
        self.settings = settings
        self.facts = facts or Facts()
        self.zone = ZoneInfo(settings.timezone) if settings.timezone else None
        self.progress = Progress(settings, self.facts)
        self.chains: dict[int, Chain] = {}
        self.where: dict[str, int] = {}  # participant key → the chain it belongs to
        self.alias: dict[int, int] = {}  # 3CX call number → the chain continuing in it (attended transfer)
        self.finished: dict[int, float] = {}  # callid → when it finished (late messages are ignored)
        self.retired: dict[str, float] = {}  # participants a chain let go of (re-created, left at its end)
        self.unsettled: set[int] = set()  # chains whose user legs all left: over once the PBX says so
        self.unasked: set[int] = set()  # chains that became unsettled since `settling()` was last called
        self.dirty: set[int] = set()  # callids changed since the last drain (to persist)
        self.gone: set[int] = set()  # callids finished since the last drain (to delete)
        self.anomalies: list[tuple[str, str]] = []  # (reason, detail) of what the PBX sent that made no sense
        self.start_hints: dict[int, float] = {}  # callid → the PBX's start time, for calls running at start-up

    @property
    def out(self) -> list[Emitted]:
        return self.progress.out

    # --- persistence ---------------------------------------------------------------------------
    def restore(self, chains: list[Chain]) -> None:
        for chain in chains:
            self.chains[chain.callid] = chain
            for alias in chain.aliases:
                self.alias[alias] = chain.callid
            for leg in chain.legs.values():
                if leg.live:
                    self.where[leg.key] = chain.callid
            if chain.end_due and not chain.live():
                self._unsettle(chain.callid)

    def drain(self) -> list[Emitted]:
        out = list(self.out)
        self.out.clear()
        return out

    # --- input ---------------------------------------------------------------------------------
    def upsert(self, p: Participant, now: float) -> None:
        self._guarded(p.key, lambda: self._upsert(p, now))

    def remove(self, dn: str, pid: int, now: float) -> None:
        self._guarded(f"{dn}/{pid}", lambda: self._remove(dn, pid, now))

    def _guarded(self, key: str, apply: Callable[[], None]) -> None:
        """Applies one participant's change; a failure is counted and stays with that participant (the rest of
        a snapshot still applies, and the Call Control socket is not reopened just to meet it again)."""
        try:
            apply()
        except Exception as exc:
            self._anomaly("participant_failed", f"{key}: {type(exc).__name__}: {exc}")
            for callid in [callid for callid, chain in self.chains.items() if not chain.legs]:
                del self.chains[callid]  # begun for this participant only

    def _upsert(self, p: Participant, now: float) -> None:
        if not p.known_status:
            # docs/3cx.md: only Ringing, Dialing and Connected are known; the leg keeps its last known state.
            self._anomaly("unknown_status", f"{p.key} status {p.status!r}")
            return
        held_in = self.where.get(p.key)
        moved: Leg | None = None
        if held_in is not None and self._moved(held_in, p):
            # Attended transfer (docs/3cx.md, inferred): the participant changed callid, it leaves its chain.
            moved = self._leave(held_in, p.key, now)
            held_in = None
        target = held_in if held_in is not None else self.alias.get(p.callid, p.callid)
        if target not in self.chains and target in self.finished:
            self._anomaly("late_message", p.key)
            return
        chain = self.chains.get(target) or self._new_chain(p, now)
        leg = chain.legs.get(p.key)
        if leg is not None and not leg.live:
            self._anomaly("upsert_after_remove", p.key)
            return
        if leg is not None and leg.part == p.to_dict():
            self._anomaly("duplicate", p.key)
            return
        takeover = taken_over(self.chains.values(), chain, leg, p) if leg is not None else None
        if takeover is not None:
            moved = self._take_over(chain, takeover, p, now)
            chain, leg = takeover, None
        self.where[p.key] = chain.callid
        self.dirty.add(chain.callid)
        if leg is None:
            self._add(chain, p, now, moved)
        else:
            self._change(chain, leg, p, now)

    def _remove(self, dn: str, pid: int, now: float) -> None:
        key = f"{dn}/{pid}"
        callid = self.where.pop(key, None)
        if callid is None or callid not in self.chains or key not in self.chains[callid].legs:
            if self.retired.pop(key, None) is None:
                self._anomaly("unknown_remove", key)
            return
        chain = self.chains[callid]
        self.dirty.add(callid)
        leg = chain.legs[key]
        leg.live = False
        leg.removed_at = now
        if leg.carrier:
            chain.external_left = True
        elif not leg.ghost:
            chain.last_removed = now
            self.progress.user_left(chain, leg, now)
        if not chain.live():
            chain.end_due = chain.end_due or now + self.settings.grace
            self._unsettle(callid)
            if chain.external_left and not chain.carriers_live():
                self._over(chain, now)  # the external party's own leg left too (a monitored trunk)

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

    # --- decisions -----------------------------------------------------------------------------
    def settling(self) -> dict[int, list[int]]:
        """Calls whose user legs all left, each with the 3CX call numbers to look up in ActiveCalls."""
        self.unasked.clear()
        return {callid: self.chains[callid].pbx_calls() for callid in self.unsettled if callid in self.chains}

    def _unsettle(self, callid: int) -> None:
        self.unsettled.add(callid)
        self.unasked.add(callid)

    def settle(self, now: float, listed: Collection[int], asked: Collection[int] | None = None) -> None:
        """What ActiveCalls lists now (`listed`, among the numbers `settling()` gave for the chains `asked`;
        None: all): a settling call it no longer lists is over (unless it may yet go on)."""
        for callid in list(self.unsettled if asked is None else self.unsettled.intersection(asked)):
            chain = self.chains.get(callid)
            if chain is None or chain.live():
                self.unsettled.discard(callid)
            elif not any(number in listed for number in chain.pbx_calls()):
                self._over(chain, now)

    def due(self, now: float) -> list[int]:
        """Call numbers with a decision due (call `decide` for each)."""
        out = []
        for callid, chain in self.chains.items():
            if (chain.end_due and chain.end_due <= now) or any(
                (leg.end_due and leg.end_due <= now) or (leg.stop_due and leg.stop_due <= now)
                for leg in chain.legs.values()
            ):
                out.append(callid)
        return out

    def needs_outside(self, callid: int, now: float) -> list[int]:
        """The 3CX call numbers `decide` needs ActiveCalls for (whether the call still exists outside the
        monitored DNs), or [] when it does not depend on that."""
        chain = self.chains.get(callid)
        if (
            chain is not None
            and not chain.live()
            and any(leg.end_due and leg.end_due <= now and not leg.ended for leg in chain.legs.values())
        ):
            return chain.pbx_calls()
        return []

    def decide(self, callid: int, now: float, listed: Collection[int] | Mapping[int, Sequence[str]] = ()) -> None:
        """Decisions due at `now`; `listed`: the call numbers XAPI ActiveCalls lists (see `needs_outside`), or
        each with the parties it shows (its `Caller` and `Callee`), which name the number a call went on to."""
        chain = self.chains.get(callid)
        if chain is None:
            return
        self.dirty.add(callid)
        going_on = bool(chain.live())
        outside = any(number in listed for number in chain.pbx_calls())
        for leg in chain.legs.values():
            if leg.stop_due and leg.stop_due <= now and not leg.stopped and going_on:
                self.progress.stop(chain, leg, now, common_pb2.RINGING_STOPPED_REASON_MOVED_ON)
        for leg in sorted(chain.legs.values(), key=lambda item: item.removed_at):
            if leg.end_due and leg.end_due <= now and not leg.ended:
                # No transfer seen within the grace: a plain hang-up, unless the PBX still has the call
                # beyond our DNs (transfer to an outside number, inferred from ActiveCalls).
                beyond = [
                    party
                    for number in chain.pbx_calls()
                    if isinstance(listed, Mapping)
                    for party in listed.get(number, ())
                ]
                self.progress.ended(chain, leg, leg.removed_at, transfer=outside and not going_on, beyond=beyond)
        if chain.end_due and chain.end_due <= now and not going_on:
            self._finish(chain, now)

    def _over(self, chain: Chain, now: float) -> None:
        """The PBX has shown the call is over: its legs end now, unless it may still go on elsewhere."""
        if consulting(self.chains.values(), chain):
            return
        for leg in sorted(chain.legs.values(), key=lambda item: item.removed_at):
            if leg.end_due and not leg.ended:
                self.progress.ended(chain, leg, leg.removed_at, transfer=False)
        self.dirty.add(chain.callid)
        self._finish(chain, now)

    # --- routing -------------------------------------------------------------------------------
    def _moved(self, held_in: int, p: Participant) -> bool:
        """Whether a known participant now shows another call than its chain's (it joined that call)."""
        leg = self.chains[held_in].legs[p.key]
        return int(leg.part["callid"]) != p.callid and self.alias.get(p.callid, p.callid) != held_in

    def _take_over(self, consultation: Chain, caller: Chain, p: Participant, now: float) -> Leg | None:
        """Moves the target's leg (and any carrier leg) from the consultation into the caller's chain."""
        moved = self._leave(consultation.callid, p.key, now)
        self.alias[p.callid] = caller.callid
        if p.callid not in caller.aliases:
            caller.aliases.append(p.callid)
        for carrier in [leg for leg in consultation.legs.values() if leg.carrier and leg.live]:
            self._leave(consultation.callid, carrier.key, now)
            caller.legs[carrier.key] = carrier
            self.where[carrier.key] = caller.callid
        return moved

    def _new_chain(self, p: Participant, now: float) -> Chain:
        began = min(now, self.start_hints.pop(p.callid, now))
        chain = Chain(p.callid, self.stamp(began), began)
        self.chains[p.callid] = chain
        return chain

    def stamp(self, moment: float) -> str:
        """The `yyMMddHHmmss` of a chain first seen at `moment`, in the PBX's zone (docs/webhooks.md §2)."""
        local = (
            dt.datetime.fromtimestamp(moment, self.zone)
            if self.zone
            else dt.datetime.fromtimestamp(moment).astimezone()
        )
        return local.strftime("%y%m%d%H%M%S")

    def _leave(self, callid: int, key: str, now: float) -> Leg | None:
        """The participant moved to another call: its leg leaves this chain (ended here as transferred)."""
        chain = self.chains.get(callid)
        self.where.pop(key, None)
        if chain is None or key not in chain.legs:
            return None
        self.dirty.add(callid)
        leg = chain.legs.pop(key)
        if leg.answered_at and not leg.ended:
            self.progress.ended(chain, leg, now, transfer=True)
        if not chain.live() and not leg.carrier:
            chain.end_due = now + self.settings.grace
            chain.last_removed = now
            self._unsettle(callid)
        return leg

    def _add(self, chain: Chain, p: Participant, now: float, moved: Leg | None) -> None:
        carrier = self.facts.carrier(p.dn)
        leg = Leg(
            p.key,
            p.dn,
            self.facts.user_type(p.dn),
            p.status,
            p.to_dict(),
            chain.offer_link,
            carrier=carrier,
            held=not carrier and not p.party_known,
        )
        if carrier:
            chain.legs[p.key] = leg
            return
        self.unsettled.discard(chain.callid)
        chain.end_due = 0.0
        if self._recreated(chain, p, now):
            return
        if not leg.held:
            learn(chain, p, self.facts, alone=not chain.known_users())
        chain.legs[p.key] = leg
        if not leg.held:
            self.progress.enter(chain, leg, p.status, now, moved)

    def _change(self, chain: Chain, leg: Leg, p: Participant, now: float) -> None:
        before, leg.part, leg.status = leg.status, p.to_dict(), p.status
        if leg.carrier or (leg.held and not p.party_known):
            return
        if p.party_known:
            learn(chain, p, self.facts, alone=not chain.known_users(but=leg))
        if leg.held:
            leg.held = False  # its party is known now: the leg begins (makecall: the dialling out starts)
            self.progress.enter(chain, leg, p.status, now, None)
        elif before != p.status:
            self.progress.change(chain, leg, before, p, now)

    def _recreated(self, chain: Chain, p: Participant, now: float) -> bool:
        """A `Connected` participant on the DN that talks (or just left) is that user's leg under a new id: a
        device re-registered mid-call (docs/3cx.md). The call goes on; the leg keeps its history."""
        talker = chain.legs.get(chain.talker)
        if p.status != "Connected" or talker is None or talker.dn != p.dn or talker.ended or talker.key == p.key:
            return False
        if not talker.live and not talker.end_due:
            return False
        del chain.legs[talker.key]
        if talker.live:
            self.where.pop(talker.key, None)
            self.retired[talker.key] = now  # its Remove is expected
        talker.earlier_ids.append(int(talker.part["id"]))
        talker.key, talker.part, talker.status = p.key, p.to_dict(), p.status
        talker.live, talker.removed_at, talker.end_due = True, 0.0, 0.0
        chain.legs[p.key] = talker
        chain.talker = p.key
        return True

    def _finish(self, chain: Chain, now: float) -> None:
        self.progress.finish(chain, now)
        for leg in chain.legs.values():
            if leg.live and self.where.pop(leg.key, None) is not None:
                self.retired[leg.key] = now  # a device or trunk leg 3CX removes a moment later
        del self.chains[chain.callid]
        self.unsettled.discard(chain.callid)
        self.gone.add(chain.callid)
        for number in chain.pbx_calls():
            self.finished[number] = now
            if self.alias.get(number) == chain.callid:
                del self.alias[number]
        for callid, when in list(self.finished.items()):
            if when < now - FORGET_AFTER:
                del self.finished[callid]
        for key, when in list(self.retired.items()):
            if when < now - FORGET_AFTER:
                del self.retired[key]

    def _anomaly(self, reason: str, detail: str) -> None:
        self.anomalies.append((reason, detail))
