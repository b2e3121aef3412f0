"""How one chain moves on as its user legs ring, answer, stop and end, and the call events that tells the CRM
(docs/webhooks.md §3, §6). Pure: the caller (the call graph) routes participants to chains and times decisions.

Where 3CX behaviour is inferred (docs/3cx.md), the comment says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tcxhooks.v1 import common_pb2

from .callback import QueueExits
from .callevents import ANSWERED, DIALING, ENDED, RINGING, STOPPED, Emitted, Fields, emitted
from .chain import Chain, Leg
from .facts import Facts, same_number
from .participant import Participant

# Who a call nobody answered is "missed at": the queue, else a ring group, else the extension (inferred ranking).
_NOT_GROUPS = frozenset({"Wextension", "Wivr", "Wroutepoint", "Wspecialmenu", "Wparkextension", "Wexternalline"})


@dataclass(frozen=True)
class Settings:
    grace: float = 1.5  # how long a call may still go on after its legs left, when the PBX cannot tell
    ringing_stopped: bool = False
    internal_calls: bool = False
    timezone: str = ""  # IANA name; "" = the host's zone


def missed_rank(facts: Facts, dn: str) -> int:
    """How strongly a DN that rang claims a call nobody answered: the last DN of the highest rank gets its
    `Missed` end (queue 3, ring group 2, extension 1, anything else 0)."""
    kind = facts.dn_types.get(dn, "Wextension")
    user_type = facts.user_type(dn)
    return 3 if user_type == "queue" else 2 if kind not in _NOT_GROUPS else 1 if user_type == "ext" else 0


class Progress:
    def __init__(self, settings: Settings, facts: Facts) -> None:
        self.settings = settings
        self.facts = facts
        self.out: list[Emitted] = []
        self.exits = QueueExits()  # callers who left a queue unanswered (the enricher's callback decisions)

    # --- a user leg shows up, changes or leaves ---------------------------------------------------
    def enter(self, chain: Chain, leg: Leg, status: str, now: float, moved: Leg | None) -> None:
        """A user leg whose party is known joins the chain (or its party just became known)."""
        self.resolve_stops(chain, now)
        chain.end_due = 0.0
        if status == "Connected" and leg.user_type == "ext":
            # Already talking without ringing here: adopted at resync, or the target of an attended transfer.
            self.answer(chain, leg, now, joined=True, moved=moved)
            return
        if status == "Dialing":
            if not chain.offer_open and chain.link == 0:
                chain.offer_open, chain.offer_at = True, now
            leg.rang_at = now  # an outbound call's ring time is its dialling time (docs/webhooks.md §3)
            self._candidate(chain, leg)
            if chain.link == 0 and chain.direction == "outgoing":
                # The outbound leg starts (with makecall: once the user picked up and the PBX dials out).
                self.emit(chain, DIALING, 0, now, Fields(leg.dn, leg.user_type))
            return
        self.offer(chain, leg, now)

    def change(self, chain: Chain, leg: Leg, before: str, p: Participant, now: float) -> None:
        """A user leg's status changed."""
        self.resolve_stops(chain, now)
        if before == "Dialing" and chain.direction == "internal":
            return  # the caller's own leg of an internal call connecting: the callee's answer tells it
        if p.status == "Connected" and leg.user_type == "ext" and not leg.answered_at:
            self.answer(chain, leg, now, joined=False, moved=None)

    def user_left(self, chain: Chain, leg: Leg, now: float) -> None:
        """A user leg was removed. Answered: it ends now as transferred when a transfer target took its place or
        is offered, else its end is decided after the grace. Ringing: its stop is decided after the grace, unless
        another device of the extension still rings."""
        if leg.held:
            return
        if leg.answered_at and not leg.ended:
            if leg.transfer_away or (leg.key == chain.talker and chain.offer_open and chain.offer_link > chain.link):
                self.ended(chain, leg, now, transfer=True)
            else:
                leg.end_due = now + self.settings.grace
        elif leg.rang and not leg.stopped and leg.user_type == "ext":
            sibling = next(
                (
                    o
                    for o in chain.live()
                    if o.dn == leg.dn and o.link == leg.link and not o.stopped and not o.answered_at
                ),
                None,
            )
            if sibling is not None:
                # Another device of the extension still rings: the extension has not stopped ringing.
                sibling.rang, sibling.rang_at, sibling.link = True, leg.rang_at, leg.link
                leg.stopped = True
            else:
                leg.stop_due = now + self.settings.grace

    def offer(self, chain: Chain, leg: Leg, now: float) -> None:
        """A DN starts ringing (queues and IVRs answer the caller to play music: their Connected is an offer)."""
        sibling = self._ringing_sibling(chain, leg)
        if sibling is not None:
            # Another device of an extension already ringing for this offer (docs/3cx.md): one ringing per DN.
            leg.link, leg.rang_at = sibling.link, sibling.rang_at
            return
        if chain.link >= 1 and not chain.offer_open:
            chain.offer_link = chain.link + 1  # a transfer begins: the target rings on the new link
            talker = chain.legs.get(chain.talker)
            if talker is not None:
                chain.transfers_from[str(chain.offer_link)] = talker.dn
        if not chain.offer_open:
            chain.offer_open, chain.offer_at = True, now
            chain.missed_user, chain.missed_rank = "", -1
        leg.link, leg.rang_at = chain.offer_link, now
        if leg.user_type == "queue":
            chain.queue = leg.dn
        elif self.facts.group(leg.dn):
            chain.group = leg.dn
        self._candidate(chain, leg)
        leg.rang = self.emit(chain, RINGING, chain.offer_link, now, Fields(leg.dn, leg.user_type))
        for other in chain.legs.values():
            if other.key == chain.talker and other.answered_at and not other.ended and not other.live:
                self.ended(chain, other, other.removed_at, transfer=True)  # the transferor left just before

    def _ringing_sibling(self, chain: Chain, leg: Leg) -> Leg | None:
        if leg.user_type != "ext" or not chain.offer_open:
            return None
        return next(
            (
                other
                for other in chain.legs.values()
                if other is not leg
                and other.dn == leg.dn
                and other.live
                and other.rang
                and not other.stopped
                and other.link == chain.offer_link
            ),
            None,
        )

    def _candidate(self, chain: Chain, leg: Leg) -> None:
        rank = missed_rank(self.facts, leg.dn)
        if rank >= chain.missed_rank:
            chain.missed_user, chain.missed_rank = leg.dn, rank

    def answer(self, chain: Chain, leg: Leg, now: float, joined: bool, moved: Leg | None) -> None:
        self.resolve_stops(chain, now)
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
            if other is leg or not other.live or other.carrier or other.stopped:
                continue
            if other.dn == leg.dn and other.user_type == "ext" and not other.answered_at:
                other.ghost = other.stopped = True  # the extension's other devices: 3CX removes them soon
            elif other.rang:
                if other.user_type == "ext":
                    self.stop(chain, other, now, common_pb2.RINGING_STOPPED_REASON_ANSWERED_ELSEWHERE)
                other.stopped = True
        if trtype == "Blind" and previous is not None and not previous.ended:
            # docs/webhooks.md §6 ex. 4: the transferor's end comes before the target's answer.
            self.ended(chain, previous, now if previous.live else previous.removed_at, transfer=True)
        chain.link = chain.offer_link = link
        chain.offer_open = False
        chain.talker = leg.key
        leg.link, leg.answered_at, leg.trtype, leg.stopped = link, now, trtype, True
        if moved is not None and moved.answered_at and moved.rang_at:
            leg.rang_at = now - (moved.answered_at - moved.rang_at)  # it rang (and answered) in the consultation
        elif not leg.rang_at:
            leg.rang_at = now
        if trtype == "Accomp" and previous is not None:
            chain.transfers_from[str(link)] = previous.dn
        self.emit(chain, ANSWERED, link, now, Fields(leg.dn, trtype=trtype, answered=now))
        if trtype == "Accomp" and previous is not None and not previous.ended:
            # docs/webhooks.md §6 ex. 5: the target's answer first, then the transferor's end.
            if previous.live:
                previous.transfer_away = True
            else:
                self.ended(chain, previous, previous.removed_at, transfer=True)

    # --- stops and ends ------------------------------------------------------------------------
    def resolve_stops(self, chain: Chain, now: float) -> None:
        """The call visibly goes on: legs that stopped ringing before this moved on."""
        for leg in chain.legs.values():
            if leg.stop_due and not leg.stopped:
                self.stop(chain, leg, now, common_pb2.RINGING_STOPPED_REASON_MOVED_ON)

    def stop(self, chain: Chain, leg: Leg, now: float, reason: common_pb2.RingingStoppedReason) -> None:
        leg.stopped, leg.stop_due = True, 0.0
        if self.settings.ringing_stopped:
            self.emit(chain, STOPPED, leg.link, now, Fields(leg.dn, leg.user_type, reason=reason))

    def ended(self, chain: Chain, leg: Leg, end: float, transfer: bool, beyond: Sequence[str] = ()) -> None:
        """The leg's end; `beyond`: the parties XAPI ActiveCalls shows for a call that went on outside the
        monitored DNs (where a transfer to an outside number names that number)."""
        leg.ended, leg.end_due = True, 0.0
        duration = max(0, round(end - leg.answered_at))
        ring = max(0, round(leg.answered_at - leg.rang_at)) if leg.rang_at else 0
        ref = common_pb2.LegRef(
            call_id=chain.call_id(leg.link),
            dn=leg.dn,
            participant_ids=leg.participant_ids,
            pbx_call_number=chain.callid,
            start_unix_ms=int(leg.answered_at * 1000),
            end_unix_ms=int(end * 1000),
            caller_id=chain.caller_id,
        )
        to, to_name = transfer_target(chain, leg, self.facts, beyond) if transfer else ("", "")
        self.emit(
            chain,
            ENDED,
            leg.link,
            end,
            Fields(
                leg.dn,
                finish=common_pb2.FINISH_TYPE_OK,
                transfer=transfer,
                duration=duration,
                ring=ring,
                leg=ref,
                answered=leg.answered_at,
                transferred_to=to,
                transferred_to_name=to_name,
            ),
        )

    def finish(self, chain: Chain, now: float) -> None:
        """The call is over: every answered leg not yet ended ends, and an offer nobody answered is `Missed`."""
        for leg in chain.legs.values():
            if leg.answered_at and not leg.ended:
                self.ended(chain, leg, leg.removed_at or now, transfer=False)
        if chain.offer_open and chain.direction:
            end = chain.last_removed or now
            missed_queue = bool(chain.queue) and chain.missed_user == chain.queue
            if missed_queue and self.reported(chain):
                self.exits.record(chain.queue, chain.name, end)
            self.emit(
                chain,
                ENDED,
                chain.offer_link,
                end,
                Fields(
                    chain.missed_user,
                    finish=common_pb2.FINISH_TYPE_MISSED,
                    ring=max(0, round(end - chain.offer_at)),
                    needs_callback=missed_queue,
                ),
            )

    # --- output --------------------------------------------------------------------------------
    def reported(self, chain: Chain) -> bool:
        return chain.direction != "internal" or self.settings.internal_calls

    def emit(self, chain: Chain, kind: str, link: int, when: float, fields: Fields) -> bool:
        if not chain.direction or not self.reported(chain):
            return False
        chain.seq += 1
        self.out.append(emitted(chain, kind, link, when, fields, self.facts))
        return True


def transfer_target(chain: Chain, leg: Leg, facts: Facts, beyond: Sequence[str] = ()) -> tuple[str, str]:
    """Where the call `leg` transferred went, and its name: the user who took it over, else the first DN offered
    it on the new link (a queue before its agents), else the outside number among the parties ActiveCalls shows
    (`beyond`; Call Control never shows it: a monitored trunk's participant shows the DN inside, docs/3cx.md)."""
    talker = chain.legs.get(chain.talker)
    if talker is not None and talker is not leg and talker.answered_at >= leg.answered_at:
        return talker.dn, facts.name(talker.dn)
    offered = sorted(
        (
            o
            for o in chain.legs.values()
            if o is not leg and o.link > leg.link and not o.carrier and not o.ghost and not o.held and o.rang_at
        ),
        key=lambda o: o.rang_at,
    )
    if offered:
        return offered[0].dn, facts.name(offered[0].dn)
    return outside_party(chain, facts, beyond)


def outside_party(chain: Chain, facts: Facts, shown: Sequence[str]) -> tuple[str, str]:
    """The number (and name) among ActiveCalls' `Caller` / `Callee` texts ("<number> <name>", docs/3cx.md §5.6)
    that is neither a DN of the directory nor the call's own external party: the one the call went on to."""
    for text in shown:
        number, _, name = text.strip().partition(" ")
        if not number or number in facts.dn_types or number in facts.names or same_number(number, chain.caller_id):
            continue
        name = name.strip()
        return number, "" if name == number else name
    return "", ""
