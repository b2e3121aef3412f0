"""amoCRM / Kommo: each leg logged once as an amoCRM call, with its recording (docs/crm.md).

    mapping = AmoMapping(options)
    call = mapping.next_call(view, leg, now)       # Call("call", "POST /api/v4/calls", {"body": [...]})

| event | amoCRM |
|---|---|
| ringing at a mapped extension (fresh) | `POST /api/v2/events` phone_call to that agent: the live call notification |
| ended, Missed | `POST /api/v4/calls` with call_status 6; inbound: a call-back task (`missed_task`) |
| ended, Ok | nothing yet: the call is logged with its recording (amoCRM calls cannot be changed) |
| recording.ready, or `recording_wait` over | `POST /api/v4/calls` with call_status 4 and the link |
| analytics.ready | a note with the summary and the transcript on the call's entity |

A call amoCRM does not add (no contact or company has the number) goes to Unsorted
(`POST /api/v4/leads/unsorted/sip`) when it is inbound. A recording that comes after its call was
logged becomes a note. Each create request is marked `pending` in the leg before it is sent; a
later attempt that finds the mark looks for what the request may have created (by the leg id in
it) before it creates anything again: a crash never leaves a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping as Map
from dataclasses import replace
from typing import Any

from ..errors import CrmError
from ..event import CrmEvent
from ..plan import Call
from . import requests as rq
from .leg import LOG_KINDS, AmoLeg
from .texts import is_recording_note, is_transcript_note, texts

NOT_ACCEPTED = "not_accepted"  # the client's code: the account no longer takes call notifications
DUPLICATE = "duplicate"  # the client's code: amoCRM already has this Unsorted entry
KINDS = ("ringing", *LOG_KINDS)


class AmoMapping:
    """Implements `Mapping[AmoLeg, float]`: the context is the current unix time (task deadlines)."""

    def __init__(self, options: rq.AmoOptions) -> None:
        self.options = options

    def key(self, event: CrmEvent) -> str | None:
        if event.kind not in KINDS or event.direction == "internal" or not event.call_id:
            return None
        return event.call_id

    def load(self, raw: Map[str, Any] | None) -> AmoLeg:
        return AmoLeg.load(raw)

    def dump(self, state: AmoLeg) -> dict[str, Any]:
        return state.dump()

    def next_call(self, event: CrmEvent, leg: AmoLeg, now: float) -> Call | None:
        key, s = event.call_id, self.options
        if leg.pending:
            return self._look_up(leg)
        if event.kind == "ringing":
            user = s.user_map.get(event.user, 0)
            if s.notify and event.usertype == "ext" and user and event.user not in leg.notified:
                return rq.notify(event.caller, user)
            return None
        if not leg.ended or leg.logged == "nowhere":
            return None
        if not leg.logged:
            if leg.waiting:
                return None
            if not leg.not_found:
                return rq.log_call(key, leg, s)
            return rq.unsorted(key, leg, s)  # on_result chose Unsorted when it set not_found
        if leg.missed and leg.direction == "inbound" and s.missed_task and not leg.task_id:
            return rq.missed_task(key, leg, s, now)
        if leg.link and leg.link != leg.logged_link and not leg.link_note:
            return rq.note("link_note", key, leg, texts(s.language).recording(key, leg.link))
        summary, transcript = (event.summary if s.summary else ""), (event.text if s.transcript else "")
        if event.kind == "analytics" and not leg.transcript_note and (summary or transcript):
            return rq.note("transcript_note", key, leg, texts(s.language).transcript_note(key, summary, transcript))
        return None

    def _look_up(self, leg: AmoLeg) -> Call:
        where, _, page = (leg.search or _FIRST_PAGE[leg.pending]).partition(":")
        if leg.pending == "call":
            return rq.find_call(leg, where, int(page))
        if leg.pending == "unsorted":
            return rq.find_unsorted(int(page))
        if leg.pending == "task":
            return rq.find_task(leg, int(page))
        return rq.find_note(leg.pending, leg, int(page))

    def on_result(self, event: CrmEvent, leg: AmoLeg, call: Call, result: Any) -> AmoLeg:
        key, step = event.call_id, call.step
        if step == "notify":
            return replace(leg, notified=(*leg.notified, event.user))
        if step == "call":
            added = next((c for c in rq.items(result, "calls") if str(c.get("request_id")) == key), None)
            if added is None:  # no entity has the number
                unsorted = self.options.unsorted and leg.direction == "inbound"
                return replace(leg, pending="", not_found=True, logged="" if unsorted else "nowhere")
            return replace(
                leg,
                pending="",
                logged="call",
                entity_type=rq.SINGULAR.get(str(added.get("entity_type")), ""),
                entity_id=int(added.get("entity_id") or 0),
                logged_link=leg.link,
            )
        if step == "unsorted":
            lead = _unsorted_lead(rq.items(result, "unsorted"), key)
            if not lead:  # an answer without the lead: find it
                return replace(leg, pending="unsorted", search="")
            return replace(
                leg, pending="", logged="unsorted", entity_type="leads", entity_id=lead, logged_link=leg.link
            )
        if step == "task":
            created = rq.items(result, "tasks")
            return replace(leg, pending="", task_id=int(created[0].get("id") or -1) if created else -1)
        if step in ("link_note", "transcript_note"):
            return _noted(leg, step)
        return self._found(leg, key, step, result)

    def _found(self, leg: AmoLeg, key: str, step: str, result: Any) -> AmoLeg:
        """The state after one page of a look-up for `leg.pending`."""
        where, _, page = (leg.search or _FIRST_PAGE[leg.pending]).partition(":")
        later: tuple[str, ...] = ()
        if step == "find_call":
            found = rq.items(result, "notes")
            note = next((n for n in found if str((n.get("params") or {}).get("uniq")) == key), None)
            if note is not None:
                link = str((note.get("params") or {}).get("link") or "")
                return replace(
                    leg,
                    pending="",
                    search="",
                    logged="call",
                    entity_type=where,
                    entity_id=int(note.get("entity_id") or 0),
                    logged_link=link,
                )
            later = rq.ENTITY_TYPES[rq.ENTITY_TYPES.index(where) + 1 :]
        elif step == "find_unsorted":
            found = rq.items(result, "unsorted")
            lead = _unsorted_lead(found, key, by_uniq=True)
            if lead:
                return replace(
                    leg,
                    pending="",
                    search="",
                    logged="unsorted",
                    entity_type="leads",
                    entity_id=lead,
                    logged_link=leg.link,
                )
        elif step == "find_task":
            found = rq.items(result, "tasks")
            task = next((t for t in found if key in str(t.get("text", ""))), None)
            if task is not None:
                return replace(leg, pending="", search="", task_id=int(task.get("id") or -1))
        else:
            found = rq.items(result, "notes")
            ours = is_recording_note if leg.pending == "link_note" else is_transcript_note
            if any(ours(str((n.get("params") or {}).get("text", "")), key) for n in found):
                return _noted(leg, leg.pending)
        if len(found) >= rq.PAGE:
            return replace(leg, search=f"{where}:{int(page) + 1}")
        if later:
            return replace(leg, search=f"{later[0]}:1")
        return replace(leg, pending="", search="")  # amoCRM has nothing: the request did not get through

    def on_error(self, event: CrmEvent, leg: AmoLeg, call: Call, error: CrmError) -> AmoLeg:
        if call.step == "notify" and error.code == NOT_ACCEPTED:
            return replace(leg, notified=(*leg.notified, event.user))
        if call.step == "unsorted" and error.code == DUPLICATE:
            return replace(leg, pending="unsorted", search="")
        raise error

    def on_skipped(self, event: CrmEvent, leg: AmoLeg, call: Call) -> AmoLeg:
        return replace(leg, notified=(*leg.notified, event.user))


_FIRST_PAGE = {
    "call": "leads:1",
    "unsorted": "unsorted:1",
    "task": "tasks:1",
    "link_note": "notes:1",
    "transcript_note": "notes:1",
}


def _noted(leg: AmoLeg, step: str) -> AmoLeg:
    """The leg once its recording-link note or its transcript note is in amoCRM."""
    if step == "link_note":
        return replace(leg, pending="", search="", link_note=True)
    return replace(leg, pending="", search="", transcript_note=True)


def _unsorted_lead(entries: list[dict[str, Any]], key: str, by_uniq: bool = False) -> int:
    """The lead id of this leg's Unsorted entry (0: not among `entries`)."""
    for entry in entries:
        mine = (
            str((entry.get("metadata") or {}).get("uniq")) == key or str(entry.get("source_uid")) == key
            if by_uniq
            else str(entry.get("request_id")) == key
        )
        leads = (entry.get("_embedded") or {}).get("leads") or []
        if mine and leads and isinstance(leads[0], dict):
            return int(leads[0].get("id") or 0)
    return 0
