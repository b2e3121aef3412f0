"""The fake Bitrix24 portal as an aiohttp app: REST (OAuth and inbound-webhook auth), the OAuth server,
the request limit, and the `/fake/` control API.

    portal = Portal()
    app = create_app(portal, limit=50, drain=2)
    # REST:   POST /rest/<method>                 {"...": ..., "auth": "<access token>"}
    #         POST /rest/<user>/<code>/<method>   inbound webhook
    # OAuth:  GET|POST /oauth/token/?grant_type=refresh_token&client_id=…&client_secret=…&refresh_token=…
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from ..common import Failure, Faults, Journal, LeakyBucket, failure_after, php_form
from . import crm, telephony
from .state import Page, Portal, RestError

Method = Callable[[Portal, dict[str, Any]], Any]
PORTAL = web.AppKey("portal", Portal)
# methods by their lower-case name (Bitrix24 method names are case-insensitive)
METHODS: dict[str, tuple[str, Method]] = {
    name.lower(): (name, fn)
    for name, fn in {
        "telephony.externalLine.add": telephony.line_add,
        "telephony.externalLine.get": telephony.line_get,
        "telephony.externalCall.register": telephony.register,
        "telephony.externalCall.show": telephony.show,
        "telephony.externalCall.hide": telephony.hide,
        "telephony.externalCall.finish": telephony.finish,
        "telephony.call.attachTranscription": telephony.attach_transcription,
        "telephony.externalCall.searchCrmEntities": telephony.search_crm_entities,
        "voximplant.statistic.get": telephony.statistic_get,
        "user.get": crm.user_get,
        "crm.activity.todo.add": crm.todo_add,
        "crm.timeline.comment.add": crm.comment_add,
        "event.bind": crm.event_bind,
        "event.get": crm.event_get,
        "event.unbind": crm.event_unbind,
        "app.info": crm.app_info,
    }.items()
}
ATTACH_RECORD = "telephony.externalCall.attachRecord"
# "works only in the context of an application" (their method pages): refused to inbound webhooks
APP_ONLY = {
    "telephony.externalcall.register",
    "telephony.externalcall.finish",
    "telephony.externalline.add",
    "telephony.externalline.get",
    "telephony.externalline.update",
    "telephony.externalline.delete",
    "event.bind",
    "event.get",
    "event.unbind",
    "app.info",
}


def _error(status: int, code: str, description: str) -> web.Response:
    return web.json_response({"error": code, "error_description": description}, status=status)


def _time(started: float) -> dict[str, Any]:
    now = time.time()
    return {
        "start": started,
        "finish": now,
        "duration": now - started,
        "processing": now - started,
        "date_start": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(started)),
        "date_finish": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now)),
        "operating_reset_at": int(now) + 600,
        "operating": 0,
    }


async def _params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise RestError(400, "INVALID_REQUEST", "The request body must be a JSON object")
            params.update(body)
        else:
            params.update({k: str(v) for k, v in (await request.post()).items()})
    return params


class FakeBitrix24:
    def __init__(self, portal: Portal, limit: int, drain: float) -> None:
        self.portal = portal
        self.bucket = LeakyBucket(limit, drain)
        self.journal = Journal()
        self.faults = Faults()
        self.uploads: dict[str, str] = {}  # upload token → CALL_ID
        self.http: aiohttp.ClientSession | None = None

    async def download(self, url: str) -> tuple[int, bytes]:
        assert self.http is not None
        try:
            async with self.http.get(url) as response:
                return response.status, await response.read()
        except aiohttp.ClientError:
            return 502, b""

    # --- REST ----------------------------------------------------------------------------------
    async def oauth_rest(self, request: web.Request) -> web.Response:
        return await self._rest(request, request.match_info["method"], webhook=False)

    async def webhook_rest(self, request: web.Request) -> web.Response:
        user, code = request.match_info["user"], request.match_info["code"]
        if user != str(self.portal.webhook_user) or code != self.portal.webhook_code:
            return await self._rest(
                request,
                request.match_info["method"],
                webhook=True,
                refused=(401, "INVALID_CREDENTIALS", "Invalid request credentials"),
            )
        return await self._rest(request, request.match_info["method"], webhook=True)

    async def _rest(
        self, request: web.Request, raw_method: str, webhook: bool, refused: tuple[int, str, str] | None = None
    ) -> web.Response:
        started = time.time()
        method = raw_method.removesuffix(".json")
        name, fn = METHODS.get(method.lower(), (method, None))
        if method.lower() == ATTACH_RECORD.lower():
            name = ATTACH_RECORD
        try:
            params = await _params(request)
        except (RestError, ValueError) as exc:
            status, code, text = (
                (exc.status, exc.code, exc.description)
                if isinstance(exc, RestError)
                else (400, "INVALID_REQUEST", "The request body is not valid JSON")
            )
            self.journal.add(name, {}, status, code)
            return _error(status, code, text)
        if not self.bucket.admit():
            self.journal.add(name, params, 503, "QUERY_LIMIT_EXCEEDED")
            return _error(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
        if refused is None:
            refused = self._refusal(params, webhook, method.lower())
        if refused is not None:
            self.journal.add(name, params, refused[0], refused[1])
            return _error(*refused)
        failure = self.faults.take(name)
        if failure is not None and not failure.body.get("after"):
            return self._fail(name, params, failure)
        try:
            if fn is not None:
                result = fn(self.portal, params)
            elif name == ATTACH_RECORD:
                result = await telephony.attach_record(
                    self.portal, params, self.download, lambda call_id: self._upload_url(request, call_id)
                )
            else:
                raise RestError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        except RestError as exc:
            self.journal.add(name, params, exc.status, exc.code or exc.description)
            return _error(exc.status, exc.code, exc.description)
        if failure is not None and await failure_after(failure):  # done, but the answer is lost
            return self._fail(name, params, failure)
        self.journal.add(name, params, 200)
        if isinstance(result, Page):
            body: dict[str, Any] = {"result": result.result, "total": result.total}
            if result.next is not None:
                body["next"] = result.next
        else:
            body = {"result": result}
        return web.json_response({**body, "time": _time(started)})

    def _refusal(self, params: dict[str, Any], webhook: bool, method: str) -> tuple[int, str, str] | None:
        if webhook:
            if method in APP_ONLY and not (self.portal.webhook_telephony and method.startswith("telephony.")):
                return 403, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method"
            return None
        token = str(params.get("auth") or "")
        if not token:
            return 401, "NO_AUTH_FOUND", "Wrong authorization data"
        state = self.portal.token_state(token)
        if state == "expired":
            return 401, "expired_token", "The access token provided has expired."
        if state == "unknown":
            return 401, "invalid_token", "The access token provided is invalid."
        return None

    def _fail(self, name: str, params: dict[str, Any], failure: Failure) -> web.Response:
        code, text = str(failure.body.get("error", "")), str(failure.body.get("error_description", ""))
        self.journal.add(name, params, failure.status, code)
        return _error(failure.status, code, text)

    def _upload_url(self, request: web.Request, call_id: str) -> str:
        token = secrets.token_urlsafe(12)
        self.uploads[token] = call_id
        return f"{request.url.origin()}/rest/upload.json?{urlencode({'token': token})}"

    async def upload(self, request: web.Request) -> web.Response:
        call_id = self.uploads.pop(request.query.get("token", ""), None)
        row = self.portal.statistic(call_id) if call_id else None
        form = await request.post()
        upload = form.get("file")
        if row is None or not isinstance(upload, web.FileField):
            return _error(400, "ERROR_CORE", "Wrong upload token or no file")
        content = upload.file.read()
        file_id = telephony.store_record(self.portal, row, upload.filename, content)
        self.journal.add("upload", {"CALL_ID": call_id, "FILENAME": upload.filename}, 200)
        return web.json_response({"result": {"FILE_ID": file_id}})

    # --- OAuth server (oauth.bitrix.info) ---------------------------------------------------
    async def oauth_token(self, request: web.Request) -> web.Response:
        params = {
            **request.query,
            **({k: str(v) for k, v in (await request.post()).items()} if request.method == "POST" else {}),
        }
        self.journal.add("oauth/token", {k: v for k, v in params.items() if k != "refresh_token"}, 200)
        if params.get("client_id") != self.portal.client_id or params.get("client_secret") != self.portal.client_secret:
            return _error(401, "invalid_client", "Invalid client credentials")
        if params.get("grant_type") != "refresh_token":
            return _error(400, "unsupported_grant_type", "grant_type must be refresh_token")
        tokens = self.portal.refresh(str(params.get("refresh_token") or ""))
        if tokens is None:
            return _error(400, "invalid_grant", "Invalid refresh token")
        origin = str(request.url.origin())
        return web.json_response(
            {
                **tokens,
                "client_endpoint": f"{origin}/rest/",
                "server_endpoint": f"{origin}/oauth/rest/",
                "domain": "oauth.bitrix.info",
            }
        )

    # --- events the portal sends ----------------------------------------------------------------
    async def post_event(self, url: str, event: str, data: dict[str, Any], auth: dict[str, Any]) -> dict[str, Any]:
        assert self.http is not None
        body = urlencode(php_form({"event": event, "data": data, "ts": str(int(time.time())), "auth": auth}))
        try:
            async with self.http.post(
                url, data=body, headers={"content-type": "application/x-www-form-urlencoded"}
            ) as response:
                return {"handler": url, "status": response.status, "body": (await response.text())[:500]}
        except aiohttp.ClientError as exc:
            return {"handler": url, "status": 0, "body": f"{type(exc).__name__}: {exc}"}

    def auth_block(self, request: web.Request, tokens: dict[str, Any]) -> dict[str, Any]:
        origin = str(request.url.origin())
        return {
            "access_token": tokens["access_token"],
            "expires_in": str(tokens["expires_in"]),
            "scope": tokens["scope"],
            "domain": request.url.host or self.portal.domain,
            "server_endpoint": f"{origin}/oauth/rest/",
            "status": "L",
            "client_endpoint": f"{origin}/rest/",
            "member_id": self.portal.member_id,
            "refresh_token": tokens["refresh_token"],
            "application_token": self.portal.application_token,
        }


def create_app(portal: Portal, limit: int = 50, drain: float = 2.0) -> web.Application:
    from .control import add_control_routes

    fake = FakeBitrix24(portal, limit, drain)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[PORTAL] = portal

    async def open_http(app: web.Application) -> Any:
        fake.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        yield
        await fake.http.close()

    app.cleanup_ctx.append(open_http)
    app.router.add_route("*", "/oauth/token/", fake.oauth_token)
    app.router.add_post("/rest/upload.json", fake.upload)
    app.router.add_route("*", "/rest/{user:\\d+}/{code}/{method}", fake.webhook_rest)
    app.router.add_route("*", "/rest/{method}", fake.oauth_rest)
    add_control_routes(app, fake)
    return app
