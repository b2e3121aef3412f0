"""What every fake CRM shares: the record of received API calls, a leaky-bucket request limit,
injected failures, and PHP-style form encoding (how PHP CRMs post their events).

    journal = Journal()
    journal.add("telephony.externalCall.register", params, 200)
    bucket = LeakyBucket(limit=50, drain=2)     # Bitrix24's: blocks above 50, drains 2 per second
    if not bucket.admit(): ...                  # answer the CRM's "too many requests"
    add_fake_routes(app, fake)                  # GET /fake/calls, POST /fake/limits, POST /fake/fail
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from aiohttp import web

HIDDEN = {"auth", "access_token", "refresh_token", "client_secret"}  # never shown in the journal


@dataclass
class Received:
    """One API call as the fake CRM saw it."""

    at: float  # unix time
    method: str
    params: dict[str, Any]
    status: int
    error: str = ""  # the CRM's error code when the status is not 2xx


def _shown(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in HIDDEN:
            continue
        if isinstance(value, str) and len(value) > 256:
            value = f"<{len(value)} characters>"
        out[key] = value
    return out


@dataclass
class Journal:
    """Every API call received, in order (`GET /fake/calls`)."""

    received: list[Received] = field(default_factory=list)

    def add(self, method: str, params: Mapping[str, Any], status: int, error: str = "") -> None:
        self.received.append(Received(time.time(), method, _shown(params), status, error))

    def rows(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.received]


class LeakyBucket:
    """A request counter that grows by one per admitted request, drains `drain` per second, and
    refuses requests while it is above `limit` (the intensity limit of Bitrix24 and others)."""

    def __init__(self, limit: int, drain: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.drain = drain
        self._clock = clock
        self._level = 0.0
        self._stamp = clock()
        self.refused = 0

    def admit(self) -> bool:
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._stamp) * self.drain)
        self._stamp = now
        if self._level + 1 > self.limit:
            self.refused += 1
            return False
        self._level += 1
        return True


@dataclass
class Failure:
    """The next `count` calls of `method` ("*": any) answer `status` with `body`."""

    method: str
    status: int
    body: dict[str, Any]
    count: int


@dataclass
class Faults:
    pending: list[Failure] = field(default_factory=list)

    def take(self, method: str) -> Failure | None:
        for failure in self.pending:
            if failure.count > 0 and failure.method in ("*", method):
                failure.count -= 1
                return failure
        return None


def php_form(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A nested mapping as PHP's `http_build_query` writes it: `data[PHONE_NUMBER]=…&auth[domain]=…`."""
    out: list[tuple[str, str]] = []
    for key, value in values.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            out += php_form(value, name)
        elif isinstance(value, (list, tuple)):
            out += php_form({str(i): v for i, v in enumerate(value)}, name)
        else:
            out.append((name, "" if value is None else str(value)))
    return out


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; a 400 with a JSON error otherwise."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json"
        )
    return body


async def failure_after(failure: Failure) -> bool:
    """For a failure injected after the work (`"after": true`): waits its `delay` seconds (a test may
    kill the client meanwhile); True when the answer must then be the failure (a status of 400 or
    more), False when the work's own answer goes out."""
    await asyncio.sleep(float(failure.body.get("delay") or 0))
    return failure.status >= 400


class Faked(Protocol):
    """What a fake CRM keeps for the `/fake/` routes every fake has."""

    journal: Journal
    bucket: LeakyBucket
    faults: Faults


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def add_fake_routes(app: web.Application, fake: Faked) -> None:
    """The `/fake/` routes every fake CRM has (not the CRM's API):

    GET  /fake/calls                   every API call received, in order
    POST /fake/limits {"limit": 50, "drain": 2}
    POST /fake/fail   {"method": "…" or "*", "status": 500, "count": 1, "after": false, "delay": 0, …}
                      (after: do the work, wait `delay` seconds, then answer the failure, or the
                      work's own answer for a status below 400; other keys: the failure's body)
    """

    async def calls(request: web.Request) -> web.Response:
        return web.json_response({"calls": fake.journal.rows(), "refused_by_limit": fake.bucket.refused})

    async def limits(request: web.Request) -> web.Response:
        body = await json_body(request)
        limit, drain = body.get("limit"), body.get("drain")
        if not isinstance(limit, int) or limit < 1 or not isinstance(drain, (int, float)) or drain <= 0:
            return _bad("give 'limit' (whole number ≥ 1) and 'drain' (requests per second > 0)")
        fake.bucket = LeakyBucket(limit, float(drain))
        return web.json_response({"limit": limit, "drain": drain})

    async def fail(request: web.Request) -> web.Response:
        body = await json_body(request)
        method, status, count = body.pop("method", "*"), body.pop("status", None), body.pop("count", 1)
        if not isinstance(method, str) or not isinstance(status, int) or not isinstance(count, int):
            return _bad("give 'method' (or '*'), 'status', optionally 'count', 'after' and the failure's fields")
        fake.faults.pending.append(Failure(method, status, {**body, "after": bool(body.get("after", False))}, count))
        return web.json_response({"pending": len(fake.faults.pending)})

    app.router.add_get("/fake/calls", calls)
    app.router.add_post("/fake/limits", limits)
    app.router.add_post("/fake/fail", fail)
