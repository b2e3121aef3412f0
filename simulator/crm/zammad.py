"""A fake Zammad generic CTI endpoint (`POST /api/v1/cti/<token>`), faithful to Zammad's own code.

    zammad = FakeZammad(token="t0k3n", blocked_callers={"4930111"})
    app = zammad.app()                     # POST /api/v1/cti/t0k3n, and /fake/ (calls, state, settings, …)
    zammad.log["251125184500_698"].state   # "hangup" (tests read it directly)

What it does, and why (docs/crm.md, "Zammad"):
- The controller checks, in this order, that the integration is on (422 "Feature is disabled…"),
  configured (422 "Feature not configured…"), and the token (401). Then the driver refuses a
  direction other than `in`/`out` (422 "Invalid direction!"): that is the side-effect-free probe
  `tcxhooks check` uses.
- An inbound `newCall` from a blocked number is logged and answered `{"action":"reject",
  "reason":"busy"}`; an outbound `newCall` with a caller-ID rule is logged with the rewritten
  `from` and answered `{"action":"dial","caller_id":…,"number":…}`; anything else `{}`.
- The caller log (`Cti::Log.process`): one row per call id; `newCall` for a known id raises
  "call_id … already exists!", `answer`/`hangup` for an unknown one "No such call_id …". Zammad's
  error handler turns both into HTTP 500, the first as `{"error":"Object already exists!"}`, the
  second (no human text, no admin session) as an opaque `"Error ID …: Please contact your
  administrator."`. An `answer` after the `hangup` is ignored; an inbound `hangup` of a row still
  in `newCall` (cause other than `forwarded`) leaves it not done: a missed call.
- Times are taken when a request arrives (the API has no timestamp field), in whole seconds.
- Zammad documents no rate limit for this endpoint; `limit` stands for a proxy in front of it
  (429 above it).

The `/fake/` API (not Zammad's): `GET /fake/calls` (every request, in order), `GET /fake/state` (the
caller log), `POST /fake/settings {"enabled", "configured", "blocked_callers"}`, `POST /fake/limits
{"limit", "drain"}`, `POST /fake/fail {"method": "newCall", "status": 500, "count": 1, "after": false}`.
"""

from __future__ import annotations

import argparse
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from .common import Faults, Journal, LeakyBucket, add_fake_routes, failure_after, json_body

UNLIMITED = 10**9
DEMO_TOKEN = "fake-cti-token"  # the bucket of a Zammad without a proxy limit


@dataclass
class CallerLogRow:
    """One `cti_logs` row."""

    call_id: str
    direction: str
    from_number: str
    to_number: str
    from_comment: str | None
    to_comment: str | None
    queue: str | None
    state: str
    done: bool
    initialized_at: int
    comment: str | None = None
    start_at: int | None = None
    end_at: int | None = None
    duration_waiting_time: int | None = None
    duration_talking_time: int | None = None
    history: list[str] = field(default_factory=list)  # the events that changed the row, in order


class CtiError(Exception):
    """An error Zammad's controller renders: HTTP status and JSON body."""

    def __init__(self, status: int, body: dict[str, str]) -> None:
        super().__init__(body.get("error", ""))
        self.status = status
        self.body = body


def _injected(status: int) -> CtiError:
    """A failure asked for under /fake/fail: Zammad's own opaque 500, or what a proxy in front answers."""
    return _opaque_error() if status == 500 else CtiError(status, {"error": f"HTTP {status} (injected)"})


def _opaque_error() -> CtiError:
    """What Zammad answers a non-admin for an error without a human text."""
    return CtiError(500, {"error": f"Error ID {secrets.token_urlsafe(6)[:8]}: Please contact your administrator."})


class FakeZammad:
    def __init__(
        self,
        token: str = DEMO_TOKEN,
        *,
        enabled: bool = True,
        configured: bool = True,
        blocked_callers: set[str] | None = None,
        default_caller_id: str = "",
        routing_table: list[tuple[str, str]] | None = None,
        limit: int = 0,
        drain: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.enabled = enabled
        self.configured = configured
        self.blocked_callers = blocked_callers or set()
        self.default_caller_id = default_caller_id
        self.routing_table = routing_table or []  # (destination pattern with *, caller id)
        self.clock = clock
        self.bucket = LeakyBucket(limit or UNLIMITED, drain or float(limit or 1), clock)
        self.journal = Journal()
        self.faults = Faults()
        self.log: dict[str, CallerLogRow] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/cti/{token}", self._event)
        _add_control_routes(app, self)
        return app

    async def _event(self, request: web.Request) -> web.Response:
        try:
            params = await _params(request)
        except CtiError as exc:
            self.journal.add("?", {}, exc.status)
            return web.json_response(exc.body, status=exc.status)
        name = str(params.get("event", "?"))
        if not self.bucket.admit():
            self.journal.add(name, params, 429, "limit")
            return web.Response(status=429, text="Too Many Requests")
        failure = self.faults.take(name)
        try:
            if failure is not None and not failure.body.get("after"):
                raise _injected(failure.status)
            result = self._process(request.match_info["token"], params)
            if failure is not None and await failure_after(failure):  # done, but the answer is lost
                raise _injected(failure.status)
        except CtiError as exc:
            self.journal.add(name, params, exc.status, exc.body.get("error", ""))
            return web.json_response(exc.body, status=exc.status)
        self.journal.add(name, params, 200)
        return web.json_response(result)

    def _process(self, token: str, params: dict[str, Any]) -> dict[str, str]:
        # Integration::CtiController: before_action check_configured, then check_token
        if not self.enabled:
            raise CtiError(422, {"error": "Feature is disabled, please contact your administrator!"})
        if not self.configured:
            raise CtiError(422, {"error": "Feature not configured, please contact your admin!"})
        if token != self.token:
            raise CtiError(401, {"error": "Invalid token, please contact your admin!"})
        # Cti::Driver::Base#process
        direction, event = params.get("direction"), params.get("event")
        if direction not in ("in", "out"):
            raise CtiError(422, {"error": "Invalid direction!"})
        if direction == "in" and event == "newCall" and params.get("from") in self.blocked_callers:
            self._log_event(params)
            return {"action": "reject", "reason": "busy"}
        rewrite = self._caller_id_rule(params) if direction == "out" and event == "newCall" else None
        if rewrite is not None:
            params = {**params, "from": rewrite}
            self._log_event(params)
            return {"action": "dial", "caller_id": rewrite, "number": str(params.get("to"))}
        self._log_event(params)
        return {}

    def _caller_id_rule(self, params: dict[str, Any]) -> str | None:
        to = params.get("to")
        if not to:
            return None
        for pattern, caller_id in self.routing_table:
            if re.fullmatch(pattern.replace("*", ".+?"), str(to)):
                return caller_id
        return self.default_caller_id or None

    def _log_event(self, params: dict[str, Any]) -> None:
        """Cti::Log.process."""
        event = params.get("event")
        call_id = params.get("callId") or params.get("call_id")
        cause = params.get("cause")
        user = params.get("user")
        if isinstance(user, list):
            user = ", ".join(str(u) for u in user)
        queue = params.get("queue")
        direction = params.get("direction")
        if direction == "in":
            to_comment, from_comment = (user or queue or None), None
            queue = queue or params.get("to")
        else:
            to_comment, from_comment = None, user
            queue = queue or params.get("from")
        row = self.log.get(str(call_id)) if call_id else None
        now = int(self.clock())
        if event == "newCall":
            if not call_id:
                raise CtiError(
                    422, {"error": "Attribute 'call_id' required!", "error_human": "Attribute 'call_id' required!"}
                )
            if row is not None:  # "call_id … already exists!", humanized by its wording
                raise CtiError(500, {"error": "Object already exists!", "error_human": "Object already exists!"})
            self.log[str(call_id)] = CallerLogRow(
                str(call_id),
                str(direction),
                str(params.get("from") or ""),
                str(params.get("to") or ""),
                from_comment,
                to_comment,
                queue,
                "newCall",
                direction != "in",
                now,
                cause,
                history=["newCall"],
            )
        elif event == "answer":
            if row is None:
                raise _opaque_error()
            if row.state == "hangup":
                return  # "call is already hangup, ignore answer"
            row.state, row.start_at = "answer", now
            row.duration_waiting_time = now - row.initialized_at
            if user is not None:
                row.to_comment = user
            row.done, row.comment = True, cause
            row.history.append("answer")
        elif event == "hangup":
            if row is None:
                raise _opaque_error()
            row.done = True
            if direction == "in" and (
                (row.state == "newCall" and cause != "forwarded") or row.to_comment == "voicemail"
            ):
                row.done = False
            row.state, row.end_at = "hangup", now
            if row.start_at is not None:
                row.duration_talking_time = now - row.start_at
            elif row.duration_waiting_time is None:
                row.duration_waiting_time = now - row.initialized_at
            row.comment = cause
            row.history.append("hangup")
        else:
            raise CtiError(422, _opaque_error().body)  # ArgumentError "Unknown event"


async def _params(request: web.Request) -> dict[str, Any]:
    """Rails' params: query string, then a JSON or form body (`user[]` repeated becomes a list)."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise CtiError(400, {"error": "JSON could not be parsed"}) from None
        if not isinstance(body, dict):
            raise CtiError(400, {"error": "JSON could not be parsed"})
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key in set(form.keys()):
            values = [str(v) for v in form.getall(key)]
            if key.endswith("[]"):
                params[key[:-2]] = values
            else:
                params[key] = values[-1]
    return params


def _add_control_routes(app: web.Application, fake: FakeZammad) -> None:
    async def state(request: web.Request) -> web.Response:
        return web.json_response({"log": [asdict(row) for row in fake.log.values()]})

    async def settings(request: web.Request) -> web.Response:
        body = await json_body(request)
        for name in ("enabled", "configured"):
            if isinstance(body.get(name), bool):
                setattr(fake, name, body[name])
        if isinstance(body.get("blocked_callers"), list):
            fake.blocked_callers = {str(number) for number in body["blocked_callers"]}
        return web.json_response(
            {"enabled": fake.enabled, "configured": fake.configured, "blocked_callers": sorted(fake.blocked_callers)}
        )

    add_fake_routes(app, fake)
    app.router.add_get("/fake/state", state)
    app.router.add_post("/fake/settings", settings)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", default=DEMO_TOKEN, help=f"the CTI token in the endpoint URL ({DEMO_TOKEN})")
    parser.add_argument(
        "--block",
        action="append",
        default=[],
        metavar="NUMBER",
        help="a caller Zammad rejects (Admin → CTI: blocked caller ids); repeatable",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=0,
        help="requests a second above which a proxy answers 429 (0: none, as Zammad itself)",
    )


def build(args: argparse.Namespace, url: str) -> tuple[web.Application, list[str]]:
    fake = FakeZammad(args.token, blocked_callers=set(args.block), limit=args.limit)
    lines = [
        f"fake Zammad at {url}",
        f"  CTI endpoint:     {url}/api/v1/cti/{fake.token}",
        f"  blocked callers:  {', '.join(sorted(fake.blocked_callers)) or '(none)'}",
        "  calls received:   GET /fake/calls; caller log: GET /fake/state",
    ]
    return fake.app(), lines
