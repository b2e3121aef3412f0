"""The fake amoCRM / Kommo account as an aiohttp app: the REST API v4 (plus the v2 call notification; its
reads in reads.py, its writes in writes.py), the OAuth server, the request limit, and the `/fake/` control
API (control.py).

    fake = FakeAmo(long_lived_token="llt")
    app = fake.app()
    fake.account.calls[0].body["call_status"]       # what amoCRM holds (tests read it directly)

Behaviour (docs/crm.md, "amoCRM / Kommo"):
- Auth: `Authorization: Bearer` with the long-lived token or an access token from
  `POST /oauth2/access_token` (authorization_code or refresh_token grant; every refresh issues a
  new refresh token and voids the old one; access tokens expire after `access_ttl`). Anything else
  answers 401 as problem JSON.
- Above the limit (7 requests a second): 429 with a non-JSON body, as amoCRM's SDK expects.
- Validation errors: 400 `{"validation-errors":[{"request_id","errors":[{"code","path","detail"}]}]}`.
- Lists with nothing to show answer 204 No Content.
- `POST /api/v4/calls`: a call whose phone matches no contact is not added (its `request_id` is
  missing from `_embedded.calls` and listed under `errors`).
- `POST /api/v2/events`: 202 while the account still accepts call notifications
  (`accepts_call_events`), else 404.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..common import Faults, Journal, LeakyBucket, failure_after
from . import reads, writes
from .account import AmoAccount
from .rest import Invalid, json_object, problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Api = Callable[["FakeAmo", web.Request], Awaitable[web.StreamResponse]]


class FakeAmo:
    def __init__(
        self,
        long_lived_token: str = "",
        *,
        client_id: str = "tcxhooks-integration",
        client_secret: str = "fake-client-secret",
        auth_code: str = "",
        access_ttl: float = 86400.0,
        limit: int = 7,
        drain: float = 7.0,
        accepts_call_events: bool = True,
        pipeline_id: int = 7000001,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account = AmoAccount()
        self.long_lived_token = long_lived_token
        self.client_id, self.client_secret, self.auth_code = client_id, client_secret, auth_code
        self.access_ttl = access_ttl
        self.accepts_call_events = accepts_call_events
        self.pipeline_id = pipeline_id
        self.bucket = LeakyBucket(limit, drain, clock)
        self.journal = Journal()
        self.faults = Faults()
        self.access_tokens: dict[str, float] = {}  # token → expiry (time.time)
        self.refresh_tokens: set[str] = set()

    def app(self) -> web.Application:
        from .control import add_control_routes

        app = web.Application()
        app.router.add_post("/oauth2/access_token", self._token)
        routes: list[tuple[str, str, Api]] = [
            ("GET", "/api/v4/account", reads.account),
            ("GET", "/api/v4/users", reads.users),
            ("GET", "/api/v4/contacts", reads.contacts),
            ("POST", "/api/v4/calls", writes.calls),
            ("POST", "/api/v4/leads/unsorted/sip", writes.unsorted),
            ("GET", "/api/v4/leads/unsorted", reads.unsorted),
            ("POST", "/api/v2/events", writes.events),
            ("POST", "/api/v4/tasks", writes.tasks),
            ("GET", "/api/v4/tasks", reads.tasks),
            ("POST", "/api/v4/{entity}/{id:[0-9]+}/notes", writes.notes),
            ("GET", "/api/v4/{entity}/{id:[0-9]+}/notes", reads.notes),
            ("GET", "/api/v4/{entity}/notes", reads.notes),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, self._api(handler))
        add_control_routes(app, self)
        return app

    def _api(self, handler: Api) -> Handler:
        """Every API request: journaled, limited, authorized, failed on demand, then handled."""

        async def run(request: web.Request) -> web.StreamResponse:
            name = f"{request.method} {request.path}"
            params = await _journal_params(request)
            if not self.bucket.admit():
                self.journal.add(name, params, 429, "limit")
                return web.Response(
                    status=429,
                    text="<html><body><h1>429 Too Many Requests</h1></body></html>",
                    content_type="text/html",
                )
            failure = self.faults.take(name)
            try:
                if failure is not None and not failure.body.get("after"):
                    raise problem(failure.status, "Injected", "a failure asked for under /fake/fail")
                self._authorize(request)
                response = await handler(self, request)
                if failure is not None and await failure_after(failure):  # done, but the answer is lost
                    raise problem(failure.status, "Injected", "a failure asked for under /fake/fail (after the work)")
            except Invalid as exc:
                self.journal.add(name, params, exc.status, str(exc.body.get("title", "")))
                return web.json_response(exc.body, status=exc.status, content_type="application/problem+json")
            self.journal.add(name, params, response.status)
            return response

        return run

    # --- auth ----------------------------------------------------------------------------------------------
    def _authorize(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise problem(401, "Unauthorized", "Authorization header is missing")
        if self.long_lived_token and secrets.compare_digest(token, self.long_lived_token):
            return
        expiry = self.access_tokens.get(token)
        if expiry is None or expiry < time.time():
            raise problem(401, "Unauthorized", "Access token is expired or revoked" if expiry else "Invalid token")

    async def _token(self, request: web.Request) -> web.Response:
        try:
            body = await json_object(request)
        except Invalid as exc:
            self.journal.add("POST /oauth2/access_token", {}, exc.status)
            return web.json_response(exc.body, status=exc.status)
        grant = body.get("grant_type")
        self.journal.add("POST /oauth2/access_token", {"grant_type": grant, "client_id": body.get("client_id")}, 200)
        fail = {
            "hint": "",
            "title": "Некорректный запрос",
            "type": "https://developers.amocrm.ru/v3/errors/OAuthProblemJson",
            "status": 400,
        }
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return web.json_response(
                {**fail, "hint": "Client authentication failed", "detail": "invalid_client"}, status=401
            )
        if grant == "authorization_code" and self.auth_code and body.get("code") == self.auth_code:
            self.auth_code = ""  # a code works once
        elif grant == "refresh_token" and body.get("refresh_token") in self.refresh_tokens:
            self.refresh_tokens.discard(str(body["refresh_token"]))
        else:
            return web.json_response({**fail, "hint": "Token has been revoked", "detail": "invalid_grant"}, status=400)
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.access_tokens[access] = time.time() + self.access_ttl
        self.refresh_tokens.add(refresh)
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": int(self.access_ttl),
                "access_token": access,
                "refresh_token": refresh,
            }
        )

    def issue_refresh_token(self) -> str:
        """A refresh token as if an admin had installed the integration (for OAuth set-ups in tests)."""
        token = secrets.token_urlsafe(32)
        self.refresh_tokens.add(token)
        return token

    def expire_tokens(self) -> int:
        """Every access token expires now (as after a day); returns how many there were."""
        count = len(self.access_tokens)
        self.access_tokens = {token: 0.0 for token in self.access_tokens}
        return count


async def _journal_params(request: web.Request) -> dict[str, Any]:
    """What the journal shows of a request: its query and JSON body."""
    params: dict[str, Any] = {}
    if request.query:
        params["query"] = dict(request.query)
    if request.can_read_body:
        try:
            params["body"] = json.loads(await request.read())
        except ValueError:
            params["body"] = "<not JSON>"
    return params
