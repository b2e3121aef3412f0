"""The fake amoCRM / Kommo account as an aiohttp app: the REST API v4 (plus the v2 call notification),
the OAuth server, the request limit, and the `/fake/` control API (control.py).

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
from .account import ENTITY_PATHS, AmoAccount, PhoneCallEvent, Task

CALL_DIRECTIONS = ("inbound", "outbound")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Invalid(Exception):
    """A request amoCRM refuses: the status and the problem-JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("detail", "")))
        self.status = status
        self.body = body


def problem(status: int, title: str, detail: str, **extra: Any) -> Invalid:
    return Invalid(
        status, {"title": title, "type": f"https://httpstatus.es/{status}", "status": status, "detail": detail, **extra}
    )


def validation(request_id: str, path: str, detail: str, code: str = "NotSupportedChoice") -> Invalid:
    errors = [{"request_id": request_id, "errors": [{"code": code, "path": path, "detail": detail}]}]
    return problem(400, "Bad Request", "Request validation failed", **{"validation-errors": errors})


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
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/api/v4/account", self._get_account),
            ("GET", "/api/v4/users", self._get_users),
            ("GET", "/api/v4/contacts", self._get_contacts),
            ("POST", "/api/v4/calls", self._post_calls),
            ("POST", "/api/v4/leads/unsorted/sip", self._post_unsorted),
            ("GET", "/api/v4/leads/unsorted", self._get_unsorted),
            ("POST", "/api/v2/events", self._post_events),
            ("POST", "/api/v4/tasks", self._post_tasks),
            ("GET", "/api/v4/tasks", self._get_tasks),
            ("POST", "/api/v4/{entity}/{id:[0-9]+}/notes", self._post_notes),
            ("GET", "/api/v4/{entity}/{id:[0-9]+}/notes", self._get_notes),
            ("GET", "/api/v4/{entity}/notes", self._get_notes),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, self._api(handler))
        add_control_routes(app, self)
        return app

    def _api(self, handler: Handler) -> Handler:
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
                response = await handler(request)
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
            body = await _json(request)
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

    @staticmethod
    def _link(request: web.Request, path: str) -> dict[str, Any]:
        return {"self": {"href": f"{request.url.origin()}{path}"}}

    # --- reads ---------------------------------------------------------------------------------------------
    async def _get_account(self, request: web.Request) -> web.Response:
        account = self.account
        return web.json_response(
            {
                "id": account.id,
                "name": "tcxhooks demo",
                "subdomain": account.subdomain,
                "current_user_id": min(account.users, default=0),
                "country": "RU",
                "currency": "RUB",
                "_links": self._link(request, "/api/v4/account"),
            }
        )

    async def _get_users(self, request: web.Request) -> web.StreamResponse:
        users = [{"id": u.id, "name": u.name, "email": u.email, "lang": "ru"} for u in self.account.users.values()]
        return _listing("users", users, request)

    async def _get_contacts(self, request: web.Request) -> web.StreamResponse:
        query = request.query.get("query", "")
        found = (
            self.account.find_contacts(query) if query else [c for c in self.account.contacts.values() if c.accepted]
        )
        items = [{"id": c.id, "name": c.name, "_embedded": {"leads": [{"id": i} for i in c.lead_ids]}} for c in found]
        return _listing("contacts", items, request)

    async def _get_unsorted(self, request: web.Request) -> web.StreamResponse:
        categories = _filter_values(request, "category")
        items = [
            {
                "uid": u.uid,
                "source_uid": u.source_uid,
                "source_name": u.source_name,
                "category": "sip",
                "pipeline_id": u.pipeline_id,
                "created_at": u.created_at,
                "metadata": u.metadata,
                "account_id": self.account.id,
                "_embedded": {"leads": [{"id": u.lead_id}], "contacts": [{"id": u.contact_id}], "companies": []},
            }
            for u in self.account.unsorted
            if not categories or "sip" in categories
        ]
        return _listing("unsorted", items, request)

    async def _get_tasks(self, request: web.Request) -> web.StreamResponse:
        types, ids = _filter_values(request, "entity_type"), _filter_values(request, "entity_id")
        items = [
            _task_json(t)
            for t in self.account.tasks
            if (not types or t.entity_type in types) and (not ids or str(t.entity_id) in ids)
        ]
        return _listing("tasks", items, request)

    async def _get_notes(self, request: web.Request) -> web.StreamResponse:
        entity = _entity_path(request)
        entity_id = int(request.match_info["id"]) if "id" in request.match_info else None
        note_types = _filter_values(request, "note_type")
        since = int(request.query.get("filter[updated_at][from]", "0") or 0)
        items = [
            {
                "id": n.id,
                "entity_id": n.entity_id,
                "note_type": n.note_type,
                "params": n.params,
                "created_at": n.created_at,
                "updated_at": n.created_at,
                "created_by": n.created_by,
            }
            for n in self.account.notes
            if n.entity_type == entity
            and (entity_id is None or n.entity_id == entity_id)
            and (not note_types or n.note_type in note_types)
            and n.created_at >= since
        ]
        return _listing("notes", items, request)

    # --- writes --------------------------------------------------------------------------------------------
    async def _post_calls(self, request: web.Request) -> web.Response:
        items = await _json_list(request)
        for n, item in enumerate(items):
            _check_call(str(item.get("request_id", n)), item)
        added, errors = [], []
        for n, item in enumerate(items):
            request_id = str(item.get("request_id", n))
            call = self.account.attach_call(item)
            if call is None:
                errors.append(
                    {
                        "request_id": request_id,
                        "status": 404,
                        "title": "Not Found",
                        "detail": "No entity with this phone number: the call is not added",
                    }
                )
                continue
            path = f"/api/v4/{call.entity_type}/{call.entity_id}"
            added.append(
                {
                    "id": call.id,
                    "entity_id": call.entity_id,
                    "entity_type": ENTITY_PATHS[call.entity_type],
                    "account_id": self.account.id,
                    "request_id": request_id,
                    "_embedded": {"entity": {"id": call.entity_id, "_links": self._link(request, path)}},
                }
            )
        return web.json_response({"_total_items": len(added), "errors": errors, "_embedded": {"calls": added}})

    async def _post_unsorted(self, request: web.Request) -> web.Response:
        items = await _json_list(request)
        known = {u.source_uid for u in self.account.unsorted}
        for n, item in enumerate(items):
            request_id = str(item.get("request_id", n))
            _check_unsorted(request_id, item)
            if str(item["source_uid"]) in known:
                raise validation(request_id, "source_uid", "Unsorted with this source_uid already exists", "Duplicate")
        created = []
        for n, item in enumerate(items):
            entry = self.account.add_unsorted(item, self.pipeline_id)
            created.append(
                {
                    "uid": entry.uid,
                    "category": "sip",
                    "request_id": str(item.get("request_id", n)),
                    "_embedded": {
                        "leads": [
                            {"id": entry.lead_id, "_links": self._link(request, f"/api/v4/leads/{entry.lead_id}")}
                        ],
                        "contacts": [{"id": entry.contact_id}],
                        "companies": [],
                    },
                }
            )
        return web.json_response({"_total_items": len(created), "_embedded": {"unsorted": created}})

    async def _post_events(self, request: web.Request) -> web.Response:
        if not self.accepts_call_events:
            raise problem(404, "Not Found", "Method is not available")
        body = await _json(request)
        add = body.get("add")
        if not isinstance(add, list) or not add:
            raise validation("0", "add", "This value should not be blank.", "NotBlank")
        for n, item in enumerate(add):
            users = item.get("users", []) if isinstance(item, dict) else None
            if not isinstance(item, dict) or item.get("type") != "phone_call" or not item.get("phone_number"):
                raise validation(str(n), "type", "Only phone_call events with a phone_number are supported")
            if not isinstance(users, list) or any(u not in self.account.users for u in users):
                raise validation(str(n), "users", "Unknown user id", "InvalidUser")
        for item in add:
            self.account.phone_events.append(PhoneCallEvent(str(item["phone_number"]), list(item.get("users", []))))
        return web.json_response({}, status=202)

    async def _post_tasks(self, request: web.Request) -> web.Response:
        items = await _json_list(request)
        for n, item in enumerate(items):
            request_id = str(item.get("request_id", n))
            if not str(item.get("text") or "").strip():
                raise validation(request_id, "text", "This value should not be blank.", "NotBlank")
            if not isinstance(item.get("complete_till"), int):
                raise validation(request_id, "complete_till", "This value should be of type int.", "InvalidType")
            if not self.account.exists(str(item.get("entity_type")), int(item.get("entity_id") or 0)):
                raise validation(request_id, "entity_id", "Entity not found", "NotFound")
        created = []
        for n, item in enumerate(items):
            task = Task(
                self.account.next_id(),
                str(item["entity_type"]),
                int(item["entity_id"]),
                str(item["text"]),
                int(item["complete_till"]),
                int(item.get("task_type_id") or 1),
                int(item.get("responsible_user_id") or 0),
            )
            self.account.tasks.append(task)
            created.append(
                {
                    "id": task.id,
                    "request_id": str(item.get("request_id", n)),
                    "_links": self._link(request, f"/api/v4/tasks/{task.id}"),
                }
            )
        return web.json_response({"_embedded": {"tasks": created}})

    async def _post_notes(self, request: web.Request) -> web.Response:
        entity, entity_id = _entity_path(request), int(request.match_info["id"])
        if not self.account.exists(entity, entity_id):
            raise problem(404, "Not Found", f"{entity} {entity_id} not found")
        items = await _json_list(request)
        for n, item in enumerate(items):
            if item.get("note_type") != "common" or not str((item.get("params") or {}).get("text") or "").strip():
                raise validation(str(item.get("request_id", n)), "params.text", "A common note needs a text")
        created = []
        for n, item in enumerate(items):
            note = self.account.add_note(entity, entity_id, "common", dict(item["params"]))
            created.append({"id": note.id, "entity_id": entity_id, "request_id": str(item.get("request_id", n))})
        return web.json_response({"_embedded": {"notes": created}})


def _task_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "entity_type": task.entity_type,
        "entity_id": task.entity_id,
        "text": task.text,
        "complete_till": task.complete_till,
        "task_type_id": task.task_type_id,
        "responsible_user_id": task.responsible_user_id,
        "is_completed": False,
    }


def _check_call(request_id: str, item: dict[str, Any]) -> None:
    if item.get("direction") not in CALL_DIRECTIONS:
        raise validation(request_id, "direction", "The value you selected is not a valid choice.")
    if not isinstance(item.get("duration"), int) or item["duration"] < 0:
        raise validation(request_id, "duration", "This value should be of type int.", "InvalidType")
    for key in ("source", "phone"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise validation(request_id, key, "This value should not be blank.", "NotBlank")
    if "call_status" in item and item["call_status"] not in range(1, 8):
        raise validation(request_id, "call_status", "The value you selected is not a valid choice.")


def _check_unsorted(request_id: str, item: dict[str, Any]) -> None:
    for key in ("source_name", "source_uid"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise validation(request_id, key, "This value should not be blank.", "NotBlank")
    metadata = item.get("metadata")
    if not isinstance(metadata, dict):
        raise validation(request_id, "metadata", "This value should not be blank.", "NotBlank")
    for key in ("uniq", "service_code", "phone", "from"):
        if not metadata.get(key):
            raise validation(request_id, f"metadata.{key}", "This value should not be blank.", "NotBlank")
    for key in ("duration", "called_at"):
        if not isinstance(metadata.get(key), int):
            raise validation(request_id, f"metadata.{key}", "This value should be of type int.", "InvalidType")


def _entity_path(request: web.Request) -> str:
    entity = request.match_info["entity"]
    if entity not in ENTITY_PATHS:
        raise problem(404, "Not Found", f"Unknown entity type {entity}")
    return entity


def _filter_values(request: web.Request, name: str) -> set[str]:
    """Values of `filter[name]`, `filter[name][]` and `filter[name][N]`."""
    prefix = f"filter[{name}]"
    return {v for k, v in request.query.items() if k == prefix or (k.startswith(prefix + "[") and k.endswith("]"))}


def _listing(key: str, items: list[dict[str, Any]], request: web.Request) -> web.StreamResponse:
    try:
        limit = min(250, max(1, int(request.query.get("limit", "50") or 50)))
        page = max(1, int(request.query.get("page", "1") or 1))
    except ValueError:
        raise problem(400, "Bad Request", "limit and page must be numbers") from None
    shown = items[(page - 1) * limit : page * limit]
    if not shown:
        return web.Response(status=204)
    return web.json_response({"_page": page, "_links": {}, "_embedded": {key: shown}})


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise problem(400, "Bad Request", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise problem(400, "Bad Request", "Request body must be an object")
    return body


async def _json_list(request: web.Request) -> list[dict[str, Any]]:
    try:
        body = await request.json()
    except ValueError:
        raise problem(400, "Bad Request", "Request body is not valid JSON") from None
    if not isinstance(body, list) or not body or not all(isinstance(i, dict) for i in body):
        raise problem(400, "Bad Request", "Request body must be a non-empty array of objects")
    if len(body) > 250:
        raise problem(400, "Bad Request", "Too many entities in one request (250 at most)")
    return body


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
