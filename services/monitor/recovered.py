"""The `call.ended` events of a call the monitor missed, built from its rows in the PBX call log (docs/3cx.md
§5.6) for outage recovery (recover.py); pure, like the call graph whose events they stand in for."""

from __future__ import annotations

from collections.abc import Callable

from tcxhooks.v1 import common_pb2, events_pb2

from .callevents import stamp as timestamp
from .callgraph import DIRECTIONS, Emitted, missed_rank
from .facts import Facts
from .pbx import xapi
from .reconcile import BadCallLog, log_direction


def events_of(callid: int, rows: list[xapi.CallLogRow], facts: Facts, stamp: Callable[[float], str]) -> list[Emitted]:
    """The `call.ended` events the monitor would have sent for an ended call, from its call-log rows (oldest
    first): one `Ok` end per extension that answered (link 1, 2, … as transfers go; `transfer` when the call was
    answered again after it, naming where it went and, on the next end, where it came from), or one `Missed` end on
    link 0 for the DN the call was missed at (queue, else ring
    group, else the last extension, as the call graph ranks them). `stamp` dates the chain (its first row's
    start). Raises BadCallLog on an unknown Direction or a row without readable durations."""
    direction = log_direction(rows)
    if any(row.ringing is None or row.talking is None for row in rows):
        raise BadCallLog("a row has no readable RingingDuration or TalkingDuration")
    first = rows[0]
    chain = f"{stamp(first.start)}_{callid}"
    did = did_name = ""
    if direction == "incoming":
        caller, caller_name = first.source_caller_id, first.source_name
        did = facts.trunk_did(first.source_dn)
        did_name = facts.rule_name(did) if did else ""
    elif direction == "outgoing":
        caller, caller_name = first.destination_caller_id, first.destination_name
    else:
        caller = first.source_dn
        caller_name = facts.name(caller)
    if caller_name == caller:
        caller_name = ""  # the PBX shows the number where it has no name (as Call Control does)
    queue = next(
        (
            r.destination_dn
            for r in reversed(rows)
            if r.destination_dn in facts.dn_types and facts.user_type(r.destination_dn) == "queue"
        ),
        "",
    )
    base = events_pb2.CallEvent(
        type=events_pb2.CALL_EVENT_TYPE_ENDED,
        direction=DIRECTIONS[direction],
        caller_id=caller,
        did=did,
        did_name=did_name,
        queue=queue,
        has_callback=bool(queue),
        started_time=timestamp(first.start),
        queue_name=facts.name(queue),
        caller_name=caller_name,
    )

    def emitted(
        link: int,
        user: str,
        finish: common_pb2.FinishType,
        end: float,
        seq: int,
        transfer: bool = False,
        duration: float = 0,
        ring: float = 0,
        leg: common_pb2.LegRef | None = None,
    ) -> Emitted:
        event = events_pb2.CallEvent()
        event.CopyFrom(base)
        event.call_id, event.user, event.finish_type, event.transfer = f"{chain}-{link}", user, finish, transfer
        event.duration_seconds, event.ring_seconds = max(0, round(duration)), max(0, round(ring))
        event.user_name = facts.name(user)
        event.ended_time.CopyFrom(timestamp(end))
        if finish == common_pb2.FINISH_TYPE_OK:
            event.answered_time.CopyFrom(timestamp(end - duration))
        missed_queue = finish == common_pb2.FINISH_TYPE_MISSED and bool(queue) and user == queue
        if queue and not missed_queue:
            event.callback_state = common_pb2.CALLBACK_STATE_NOT_ORDERED
        return Emitted(
            chain,
            f"{chain}-{link}/recovered/ended",
            end,
            event,
            leg,
            needs_did=direction == "incoming" and not did,
            needs_callback=missed_queue,
            callid=callid,
            seq=seq,
        )

    extensions = facts.extensions()
    answered = [i for i, row in enumerate(rows) if row.answered]
    out: list[Emitted] = []
    for i in answered:
        row = rows[i]
        # An extension answers as a row's destination, or as the caller of a call out the far end answered.
        user = (
            row.destination_dn
            if row.destination_dn in extensions
            else row.source_dn
            if i == 0 and direction == "outgoing" and row.source_dn in extensions
            else ""
        )
        if not user:
            continue  # the far end of a transfer out: it only tells the extension before it was transferred
        ring, talk = row.ringing or 0.0, row.talking or 0.0
        start, end = row.start + ring, row.start + ring + talk
        link = len(out) + 1
        leg = common_pb2.LegRef(
            call_id=f"{chain}-{link}",
            dn=user,
            pbx_call_number=callid,
            start_unix_ms=int(start * 1000),
            end_unix_ms=int(end * 1000),
            caller_id=caller,
        )
        item = emitted(
            link,
            user,
            common_pb2.FINISH_TYPE_OK,
            end,
            link,
            transfer=i != answered[-1],
            duration=talk,
            ring=ring,
            leg=leg,
        )
        if item.event.transfer and i + 1 < len(rows):
            item.event.transferred_to, item.event.transferred_to_name = _reached(rows[i + 1], facts)
        if out:  # answered after a transfer: from the extension that talked before
            item.event.transferred_from, item.event.transferred_from_name = out[-1].event.user, out[-1].event.user_name
        out.append(item)
    if out:
        return out
    rang = ([first.source_dn] if direction == "outgoing" else []) + [row.destination_dn for row in rows]
    user, rank = "", -1
    for dn in (dn for dn in rang if dn in facts.dn_types):
        if missed_rank(facts, dn) >= rank:
            user, rank = dn, missed_rank(facts, dn)
    end = max(row.start + (row.ringing or 0.0) for row in rows)
    return [emitted(0, user, common_pb2.FINISH_TYPE_MISSED, end, 1, ring=end - first.start)]


def _reached(row: xapi.CallLogRow, facts: Facts) -> tuple[str, str]:
    """The party a call-log row went to, and its name: a DN of ours, else the number called out (a trunk)."""
    dn = row.destination_dn
    if dn in facts.dn_types and not facts.carrier(dn):
        return dn, facts.name(dn)
    number = row.destination_caller_id or dn
    return number, "" if row.destination_name == number else row.destination_name
