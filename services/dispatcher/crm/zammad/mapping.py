"""Zammad generic CTI: one caller-log row per call chain (docs/crm.md, "Zammad").

    mapping = ZammadMapping()
    call = mapping.next_call(view, mapping.load(stored), options)    # Call("newCall", "newCall", {...})

Zammad's caller log keeps one row per `callId` and knows three events: `newCall` creates the row,
`answer` marks it answered (and restarts its talk time), `hangup` ends it. tcxhooks sends them per
call chain (`callId` = the chain, `<yyMMddHHmmss>_<n>`), so a transferred call stays one row:

| event | what Zammad gets |
|---|---|
| first ringing / dialing / answered / ended of the chain | `newCall` (who rings, the queue) |
| first answered (link 1) | `answer`; never a second one after a transfer: it would restart the talk time |
| ended with transfer=false (the chain's end) | `hangup`: normalClearing when someone answered, else cancel (inbound: the caller gave up, Zammad lists it as missed) or noAnswer (outbound) |

Zammad raises for a `newCall` it already has: a retried `newCall` counts as done. An `answer` or
`hangup` it refuses with a 500 may be for a call it never saw (it says so only in its own log), so
`newCall` goes first and the step once more; a second 500 after Zammad confirmed the row is a
plain failure, retried by the schedule. An inbound `newCall` Zammad answers with `reject` (a blocked
caller) is ended at once with cause `busy`, and the rest of the chain is not sent: tcxhooks cannot
end the PBX call, but Zammad's log shows what Zammad asked for. Internal calls are not sent.
"""

from __future__ import annotations

from collections.abc import Mapping as Map
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import CrmError
from ..event import CrmEvent
from ..plan import Call

CALL_KINDS = ("ringing", "dialing", "answered", "ended")
EXISTS = "exists"  # the client's code for Zammad's "Object already exists!"
SERVER = "server"  # the client's code for an opaque 500 (maybe "No such call_id")


@dataclass(frozen=True)
class ZammadOptions:
    """What the mapping needs of the [crm:NAME] section: extension → `answeringNumber` overrides
    (a Zammad user's login or e-mail; without one the extension number, matched to `user.phone`)."""

    user_map: Map[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainState:
    """The Zammad row of one call chain, as far as Zammad confirmed it."""

    direction: str = ""  # in / out
    from_number: str = ""
    to_number: str = ""
    users: tuple[str, ...] = ()  # who rang when the row was created
    queue: str = ""
    new_call: str = ""  # "" (not yet), "sent", "rejected" (Zammad answered reject)
    answered_by: str = ""  # the extension whose `answer` Zammad took
    hung_up: bool = False
    # after an opaque 500 to answer/hangup: "needed" (send newCall first), "done" (Zammad has the row)
    row_check: str = ""


class ZammadMapping:
    """Implements `Mapping[ChainState, ZammadOptions]`."""

    def key(self, event: CrmEvent) -> str | None:
        if event.kind not in CALL_KINDS or event.direction == "internal" or not event.chain:
            return None
        return event.chain

    def load(self, raw: Map[str, Any] | None) -> ChainState:
        if not raw:
            return ChainState()
        known = {k: v for k, v in raw.items() if k in ChainState.__dataclass_fields__}
        known["users"] = tuple(known.get("users", ()))
        return ChainState(**known)

    def dump(self, state: ChainState) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(state).items()}

    def next_call(self, event: CrmEvent, state: ChainState, options: ZammadOptions) -> Call | None:
        if state.hung_up:
            return None
        chain = event.chain
        if state.new_call == "rejected":
            return _request("hangup", chain, state, cause="busy")
        if not state.new_call or state.row_check == "needed":
            row = state if state.new_call else _row_of(event)
            return _request("newCall", chain, row, user=list(row.users), **({"queue": row.queue} if row.queue else {}))
        if event.kind == "answered" and not state.answered_by:
            if state.direction == "out":  # Zammad would take `user` as the called party's name
                return _request("answer", chain, state)
            return _request("answer", chain, state, user=_name(event), answeringNumber=_answering(event.user, options))
        if event.kind == "ended" and not event.transfer:
            if state.answered_by:
                return _request(
                    "hangup",
                    chain,
                    state,
                    cause="normalClearing",
                    answeringNumber=_answering(state.answered_by, options),
                )
            return _request("hangup", chain, state, cause="cancel" if state.direction == "in" else "noAnswer")
        return None

    def on_result(self, event: CrmEvent, state: ChainState, call: Call, result: Any) -> ChainState:
        if call.step == "newCall":
            rejected = (
                isinstance(result, dict) and result.get("action") == "reject" and call.params["direction"] == "in"
            )
            row = state if state.new_call else _row_of(event)
            return replace(
                row, new_call="rejected" if rejected else "sent", row_check="done" if state.row_check else ""
            )
        if call.step == "answer":
            return replace(state, answered_by=event.user or "?", row_check="")
        return replace(state, hung_up=True, row_check="")

    def on_error(self, event: CrmEvent, state: ChainState, call: Call, error: CrmError) -> ChainState:
        if call.step == "newCall" and error.code == EXISTS:  # a retried newCall: Zammad has the row
            row = state if state.new_call else _row_of(event)
            return replace(row, new_call=row.new_call or "sent", row_check="done" if state.row_check else "")
        if call.step != "newCall" and error.code == SERVER and not state.row_check:
            return replace(state, row_check="needed")
        raise error

    def on_skipped(self, event: CrmEvent, state: ChainState, call: Call) -> ChainState:
        return state  # no Zammad step is real-time only: newCall creates the row as well as the pop-up


def _row_of(event: CrmEvent) -> ChainState:
    """The row this event would create: direction, numbers, who rings, the queue."""
    if event.direction == "out" or event.kind == "dialing":
        return ChainState(direction="out", from_number=event.user, to_number=event.caller, users=(_name(event),))
    queue_call = event.usertype == "queue"
    users = () if queue_call or not event.user else (_name(event),)
    queue = event.queue_name or (event.user if queue_call else event.queue)
    return ChainState(
        direction="in", from_number=event.caller, to_number=event.did or event.user, users=users, queue=queue
    )


def _name(event: CrmEvent) -> str:
    return event.user_name or event.user


def _answering(extension: str, options: ZammadOptions) -> str:
    return options.user_map.get(extension, extension)


def _request(event_name: str, chain: str, row: ChainState, **extra: Any) -> Call:
    params = {
        "event": event_name,
        "from": row.from_number,
        "to": row.to_number,
        "direction": row.direction,
        "callId": chain,
        **extra,
    }
    return Call(event_name, event_name, params)
