"""Bitrix24 as docs/crm.md maps it: (event, leg state, context) → the next REST call, answers → state.

One Bitrix24 call per leg slot: the ringing of link 0 and the conversation of link 1 are one call
(its card pops up while it rings, its log entry is written when it ends); every transfer target
(link 2, 3, …) is a call of its own. `finish` can run once per CALL_ID and `attachRecord` keeps one
file per CALL_ID, which is why a transfer chain is several Bitrix24 calls.

    mapping = BitrixMapping()
    call = mapping.next_call(view, leg, context)   # Call("register", "telephony.externalCall.register", …)
    leg = mapping.on_result(view, leg, call, {"CALL_ID": "externalCall.…", …})
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping as Map
from dataclasses import dataclass, replace
from typing import Any

from ..errors import CrmError
from ..event import CrmEvent
from ..plan import Call, Upload

REGISTER, SHOW, HIDE, FINISH = (
    "telephony.externalCall.register",
    "telephony.externalCall.show",
    "telephony.externalCall.hide",
    "telephony.externalCall.finish",
)
ATTACH_RECORD, TRANSCRIPT = "telephony.externalCall.attachRecord", "telephony.call.attachTranscription"
STATISTIC, TODO, COMMENT = "voximplant.statistic.get", "crm.activity.todo.add", "crm.timeline.comment.add"
OWNER_TYPE_IDS = {"LEAD": 1, "DEAL": 2, "CONTACT": 3, "COMPANY": 4}
SIDES = {"operator": "User", "client": "Client"}
TEXTS = {
    "ru": {
        "task": "Перезвонить клиенту",
        "missed": "Пропущенный звонок",
        "callback": "Клиент заказал обратный звонок",
        "summary": "Итог разговора",
        "transcript": "Расшифровка",
    },
    "en": {
        "task": "Call back",
        "missed": "Missed call",
        "callback": "The caller ordered a callback",
        "summary": "Call summary",
        "transcript": "Transcript",
    },
}


@dataclass(frozen=True)
class Options:
    """The [crm:NAME] keys the mapping reads."""

    crm_create: bool = False
    add_to_chat: bool = True
    missed_task: bool = True
    missed_task_delay: float = 15 * 60.0
    recording: str = "upload"  # upload | link | none
    transcript: bool = True
    summary: bool = True
    language: str = "ru"
    timezone: dt.tzinfo | None = None  # for CALL_START_DATE and deadlines (None: the host's)


@dataclass(frozen=True)
class Context:
    """What the adapter knows around one event: the user map, the line, whether it is fresh."""

    users: Map[str, int]  # extension → Bitrix24 user id
    default_user: int  # 0: none
    line: str  # LINE_NUMBER for this call ("" = none)
    fresh: bool
    options: Options


@dataclass(frozen=True)
class Leg:
    """What Bitrix24 knows of one leg slot, stored after every call."""

    call_id: str = ""
    user_id: int = 0  # registered for
    shown: tuple[int, ...] = ()  # users whose card is open
    finished: bool = False
    activity_id: int = 0
    entity_type: str = ""  # CONTACT / COMPANY / LEAD / DEAL
    entity_id: int = 0
    clicked: bool = False  # registered by Bitrix24 for a click-to-call
    user_fallback: bool = False  # the mapped user was refused: the default user stands in
    record_upload: bool = False  # the portal cannot fetch our links: upload the file instead
    lost: bool = False  # finish said "not found": look the call up in the statistics
    done: tuple[str, ...] = ()  # one-off steps done: record, transcript, comment, todo


def _iso(seconds: float, tz: dt.tzinfo | None) -> str:
    return dt.datetime.fromtimestamp(seconds, tz or dt.datetime.now().astimezone().tzinfo).isoformat(timespec="seconds")


def phone(number: str) -> str:
    """The caller's number as Bitrix24 takes it: digits, with a leading + kept."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return ("+" + digits) if number.strip().startswith("+") and digits else digits


class BitrixMapping:
    def key(self, event: CrmEvent) -> str | None:
        if event.link < 0 or event.direction == "internal":
            return None
        if event.is_call and not phone(event.caller):
            return None  # an anonymous caller: Bitrix24 needs a number to log a call
        return f"{event.call_id.rsplit('-', 1)[0]}-{max(event.link, 1)}"

    def load(self, raw: Map[str, Any] | None) -> Leg:
        if not raw:
            return Leg()
        return Leg(**{**raw, "shown": tuple(raw.get("shown", ())), "done": tuple(raw.get("done", ()))})

    def dump(self, state: Leg) -> dict[str, Any]:
        return {
            "call_id": state.call_id,
            "user_id": state.user_id,
            "shown": list(state.shown),
            "finished": state.finished,
            "activity_id": state.activity_id,
            "entity_type": state.entity_type,
            "entity_id": state.entity_id,
            "clicked": state.clicked,
            "user_fallback": state.user_fallback,
            "record_upload": state.record_upload,
            "lost": state.lost,
            "done": list(state.done),
        }

    # --- the next call ---------------------------------------------------------------------------
    def next_call(self, event: CrmEvent, leg: Leg, ctx: Context) -> Call | None:
        if event.is_call and not leg.call_id:
            return self._register(event, leg, ctx)
        if event.kind == "ringing" and not leg.finished:
            user = ctx.users.get(event.user, 0) if event.usertype == "ext" else 0
            if user and user not in leg.shown:
                return Call("show", SHOW, {"CALL_ID": leg.call_id, "USER_ID": [user]}, realtime=True)
        elif event.kind in ("ringing_stopped", "answered") and not leg.finished:
            user = ctx.users.get(event.user, 0)
            hidden = [u for u in leg.shown if (u == user) == (event.kind == "ringing_stopped")]
            if hidden:
                return Call("hide", HIDE, {"CALL_ID": leg.call_id, "USER_ID": hidden}, realtime=True)
        elif event.kind == "ended":
            return self._end(event, leg, ctx)
        elif event.kind == "recording" and leg.call_id and "record" not in leg.done:
            return self._record(event, leg, ctx.options)
        elif event.kind == "analytics" and leg.call_id:
            return self._analytics(event, leg, ctx.options)
        return None

    def _user(self, event: CrmEvent, leg: Leg, ctx: Context) -> int:
        if leg.user_fallback:
            return ctx.default_user
        return ctx.users.get(event.user, 0) or ctx.default_user

    def _register(self, event: CrmEvent, leg: Leg, ctx: Context) -> Call | None:
        if event.kind == "ringing" and event.usertype != "ext":
            return None  # a queue or IVR rings: nobody to show the card to yet
        if event.kind == "ringing" and not ctx.users.get(event.user):
            return None  # an agent without a Bitrix24 account rings: a mapped one, or the call's end, registers
        user = self._user(event, leg, ctx)
        if not user:
            raise CrmError(
                f"no Bitrix24 user for extension {event.user or '?'} and no default_user",
                verdict="dead",
                code="NO_USER",
            )
        # the card pops up for whoever rings, dials or takes a transfer, while it is worth it
        popup = ctx.fresh and (event.kind in ("ringing", "dialing") or (event.kind == "answered" and event.link > 1))
        params: dict[str, Any] = {
            "USER_ID": user,
            "PHONE_NUMBER": phone(event.caller),
            "TYPE": 1 if event.direction == "out" else 2,
            "CALL_START_DATE": _iso(event.started_at or event.occurred_at, ctx.options.timezone),
            "CRM_CREATE": int(ctx.options.crm_create),
            "SHOW": int(popup),
            "ADD_TO_CHAT": int(ctx.options.add_to_chat),
            "EXTERNAL_CALL_ID": event.call_id,
        }
        if ctx.line:
            params["LINE_NUMBER"] = ctx.line
        return Call("register", REGISTER, params, realtime=popup)

    def _end(self, event: CrmEvent, leg: Leg, ctx: Context) -> Call | None:
        options = ctx.options
        missed = event.finishtype == "Missed"
        if leg.lost:
            return Call("lookup", STATISTIC, {"FILTER": {"CALL_ID": leg.call_id}})
        if not leg.finished:
            user = ctx.users.get(event.user, 0) if not leg.user_fallback else 0
            user = user or ctx.default_user or leg.user_id
            params: dict[str, Any] = {
                "CALL_ID": leg.call_id,
                "USER_ID": user,
                "DURATION": 0 if missed else event.duration,
                "ADD_TO_CHAT": int(options.add_to_chat),
                "STATUS_CODE": ("603-S" if event.direction == "out" else "304") if missed else "200",
            }
            if missed:
                params["FAILED_REASON"] = event.title or TEXTS[options.language]["missed"]
            return Call("finish", FINISH, params)
        wants_task = missed and event.direction == "in" and not event.transfer and options.missed_task
        if wants_task and "todo" not in leg.done and leg.entity_type in OWNER_TYPE_IDS and leg.entity_id:
            texts = TEXTS[options.language]
            description = event.title or texts["missed"]
            if event.callback:
                description = f"{description}. {texts['callback']}"
            responsible = ctx.default_user or leg.user_id
            params = {
                "ownerTypeId": OWNER_TYPE_IDS[leg.entity_type],
                "ownerId": leg.entity_id,
                "deadline": _iso((event.ended_at or event.occurred_at) + options.missed_task_delay, options.timezone),
                "title": texts["task"],
                "description": f"{description} ({event.caller})",
                "responsibleId": responsible,
            }
            if leg.activity_id:
                params["parentActivityId"] = leg.activity_id
            return Call("todo", TODO, params)
        return None

    def _record(self, event: CrmEvent, leg: Leg, options: Options) -> Call | None:
        if options.recording == "none" or not event.links:
            return None
        name = f"{event.call_id}.mp3"
        if options.recording == "link" and not leg.record_upload and len(event.links) == 1:
            return Call(
                "record", ATTACH_RECORD, {"CALL_ID": leg.call_id, "FILENAME": name, "RECORD_URL": event.links[0]}
            )
        return Call(
            "record",
            ATTACH_RECORD,
            {"CALL_ID": leg.call_id, "FILENAME": name},
            upload=Upload(event.links, "FILE_CONTENT"),
        )

    def _analytics(self, event: CrmEvent, leg: Leg, options: Options) -> Call | None:
        messages = [
            {
                "SIDE": SIDES[s.channel],
                "START_TIME": max(0, math.floor(s.start)),
                "STOP_TIME": max(1, math.ceil(s.end)),
                "MESSAGE": s.text.strip(),
            }
            for s in event.segments
            if s.channel in SIDES and s.text.strip()
        ]
        if options.transcript and messages and "transcript" not in leg.done:
            return Call("transcript", TRANSCRIPT, {"CALL_ID": leg.call_id, "MESSAGES": messages})
        texts = TEXTS[options.language]
        if options.summary and event.summary and leg.entity_id and "comment" not in leg.done:
            comment = f"{texts['summary']} ({event.call_id}): {event.summary}"
            if not messages and event.text:  # a mono recording: no speakers for a transcript, the text goes here
                comment += f"\n\n{texts['transcript']}:\n{event.text}"
            return Call(
                "comment",
                COMMENT,
                {"fields": {"ENTITY_TYPE": leg.entity_type.lower(), "ENTITY_ID": leg.entity_id, "COMMENT": comment}},
            )
        return None

    # --- answers -------------------------------------------------------------------------------
    def on_result(self, event: CrmEvent, leg: Leg, call: Call, result: Any) -> Leg:
        answer: dict[str, Any] = result if isinstance(result, dict) else {}
        if call.step == "register":
            shown = (int(call.params["USER_ID"]),) if call.params["SHOW"] else ()
            return replace(
                leg,
                call_id=str(answer.get("CALL_ID") or ""),
                user_id=int(call.params["USER_ID"]),
                shown=shown,
                **_entity(answer, leg),
            )
        if call.step == "show":
            return replace(leg, shown=leg.shown + tuple(u for u in call.params["USER_ID"] if u not in leg.shown))
        if call.step == "hide":
            return replace(leg, shown=tuple(u for u in leg.shown if u not in call.params["USER_ID"]))
        if call.step == "finish":
            return replace(
                leg, finished=True, shown=(), activity_id=_int(answer.get("CRM_ACTIVITY_ID")), **_entity(answer, leg)
            )
        if call.step == "lookup":
            rows = result if isinstance(result, list) else []
            row = next((r for r in rows if isinstance(r, dict) and r.get("CALL_ID") == leg.call_id), None)
            if row is None:  # the portal forgot the call: register it again and finish that one
                return replace(leg, call_id="", shown=(), lost=False)
            return replace(
                leg,
                lost=False,
                finished=True,
                shown=(),
                activity_id=_int(row.get("CRM_ACTIVITY_ID")),
                **_entity(row, leg),
            )
        return replace(leg, done=(*leg.done, call.step))

    def on_error(self, event: CrmEvent, leg: Leg, call: Call, error: CrmError) -> Leg:
        text = error.description.lower()
        if "user is not found" in text and not leg.user_fallback and call.step in ("register", "finish"):
            return replace(leg, user_fallback=True)  # a dismissed or unknown employee: the default user stands in
        if call.step == "finish" and "call is not found" in text:
            return replace(leg, lost=True)  # finished by an attempt whose answer was lost, or forgotten
        if call.step == "lookup" and error.verdict != "retry":
            # no right to read the statistics: the call was ours and registered, so "not found" at
            # finish means an earlier attempt finished it; a second log entry would be worse
            return replace(leg, lost=False, finished=True, shown=())
        if call.step in ("show", "hide") and error.verdict == "dead":
            return replace(leg, shown=())  # the card is gone with the call; screen pops are not worth a dead event
        if (
            call.step == "record"
            and not leg.record_upload
            and ("server returns http error" in text or "non-public address" in text)
        ):
            return replace(leg, record_upload=True)  # the portal cannot reach our link: send the file itself
        if call.step in ("record", "transcript") and ("not finished" in text or "is it finished" in text):
            raise error.but("retry")
        raise error

    def on_skipped(self, event: CrmEvent, leg: Leg, call: Call) -> Leg:
        if call.step == "show":
            return replace(leg, shown=leg.shown + tuple(u for u in call.params["USER_ID"] if u not in leg.shown))
        if call.step == "hide":
            return replace(leg, shown=tuple(u for u in leg.shown if u not in call.params["USER_ID"]))
        return leg


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _entity(answer: Map[str, Any], leg: Leg) -> dict[str, Any]:
    kind, number = str(answer.get("CRM_ENTITY_TYPE") or ""), _int(answer.get("CRM_ENTITY_ID"))
    if kind in OWNER_TYPE_IDS and number:
        return {"entity_type": kind, "entity_id": number}
    return {"entity_type": leg.entity_type, "entity_id": leg.entity_id}
