"""HTTP client of the PBX: OAuth client-credentials token manager, JSON GETs and POSTs, byte streams.

    pbx = PbxClient(settings.pbx)
    users = await pbx.get_json("/xapi/v1/Users", {"$select": "Id,Number"})
    result = await pbx.post_json("/callcontrol/101/makecall", {"destination": "79161234567"})
    async for chunk in pbx.stream("/xapi/v1/Recordings/Pbx.DownloadRecording(recId=7)"):
        ...
    await pbx.aclose()

3CX keeps one live token per client (docs/3cx.md §1.2), so one PbxClient per process mints for
everybody: one mint at a time behind a lock, refreshed `token_margin` before the JWT's `exp`
(fallback `expires_in` seconds), and minted again once when a request answers 401. Tokens may live only
60 s: `keep_token_fresh` mints the next one ahead of time, so no request waits for a mint and a reconnect
never starts with an expired token.

Requests go through `http.py` (aiohttp; a trace replay answers in process instead).

JSON from the PBX is read leniently: bytes that are not UTF-8 and `\ud800`-style escapes of lone surrogates
become U+FFFD, so one odd name cannot make a whole `GET /callcontrol` unreadable.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from tcxhooks.platform.waiting import sleep_or_stop

from ..capture.recorder import Recorder
from ..config import PbxConfig
from ..errors import PbxError, PbxHttpError
from ..metrics import PBX_REQUEST_SECONDS, TOKEN_MINTS
from ..participant import encodable
from .http import BrokenOff, Http, Network, PbxAnswer, PbxRequest, Unreachable

log = logging.getLogger(__name__)

TOKEN_PATH = "/connect/token"
DEFAULT_LIFETIME = 60.0  # when neither `exp` nor `expires_in` can be read
RETRY_MINT = 5.0  # seconds between attempts when minting ahead of time fails
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _encodable(value: Any) -> Any:
    """`value` (decoded JSON) with lone surrogates in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    return value


def decode_json(body: bytes) -> Any:
    """JSON text → value; undecodable bytes and lone surrogates become U+FFFD (ValueError if not JSON, or
    nested deeper than the parser's stack)."""
    try:
        value = json.loads(body.decode("utf-8", "replace"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    return _encodable(value) if _SURROGATE_ESCAPE.search(body) else value


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim (unix seconds) of a JWT, or None when it is not a readable JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
        exp = claims.get("exp") if isinstance(claims, dict) else None
        return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None
    except (ValueError, TypeError, RecursionError):
        return None


def _kind(path: str) -> str:
    if path.startswith("/xapi/"):
        return "xapi"
    if path.startswith("/callcontrol"):
        return "callcontrol"
    return "other"


def _detail(answer: PbxAnswer) -> str:
    """A short, secret-free description of an error answer (OData error message or body start)."""
    try:
        body = json.loads(answer.body)
    except (ValueError, RecursionError):
        text = answer.body.decode("utf-8", "replace").strip().replace("\n", " ")
        return text[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("code") or "")[:200]
        if isinstance(error, str):
            return str(body.get("error_description") or error)[:200]
    return json.dumps(body)[:200]


class PbxClient:
    """One per process; safe for concurrent use by several tasks."""

    def __init__(self, pbx: PbxConfig, http: Http | None = None) -> None:
        self.base_url: str = pbx.url
        self.client_id = pbx.client_id
        self._secret = pbx.client_secret
        self._margin = pbx.token_margin
        if pbx.verify_tls == "true":
            self.verify: bool | str = True
        elif pbx.verify_tls == "false":
            self.verify = False
        else:
            self.verify = pbx.verify_tls
        self._http = http if http is not None else Network(pbx.url, self.ssl_context())
        self._token: str | None = None
        self._refresh_at = 0.0  # unix seconds
        self._lock = asyncio.Lock()
        self.token_minted_at = 0.0
        self.recorder: Recorder | None = None  # a capture listening to the XAPI answers (capture/recorder.py)

    # --- token ---------------------------------------------------------------------------------
    async def token(self) -> str:
        """A live bearer token, minted when missing or within `token_margin` of its expiry."""
        if self._token is not None and time.time() < self._refresh_at:
            return self._token
        return await self._mint(self._token)

    async def keep_token_fresh(self, stopping: asyncio.Event) -> None:
        """Mints each next token `token_margin` before the current one expires, until `stopping` is set."""
        while not stopping.is_set():
            wait = max(0.0, self._refresh_at - time.time()) if self._token is not None else 0.0
            if await sleep_or_stop(wait, stopping):
                return
            try:
                await self.token()
            except PbxError as exc:
                log.warning("cannot mint the next PBX token ahead of time: %s", exc)
                await sleep_or_stop(RETRY_MINT, stopping)

    async def renew(self, stale: str | None) -> str:
        """A new token unless somebody already replaced `stale` (call after a 401)."""
        return await self._mint(stale, force=True)

    async def _mint(self, stale: str | None, force: bool = False) -> str:
        async with self._lock:
            if self._token is not None and self._token != stale:
                return self._token
            if self._token is not None and not force and time.time() < self._refresh_at:
                return self._token
            started = time.perf_counter()
            try:
                form = urlencode(
                    {"client_id": self.client_id, "client_secret": self._secret, "grant_type": "client_credentials"}
                ).encode()
                response = await self._http.exchange(
                    PbxRequest(
                        "POST", TOKEN_PATH, headers={"Content-Type": "application/x-www-form-urlencoded"}, body=form
                    )
                )
            except Unreachable as exc:
                TOKEN_MINTS.labels("unreachable").inc()
                self._record_token("unreachable")
                PBX_REQUEST_SECONDS.labels("token", "error").observe(time.perf_counter() - started)
                raise PbxError(f"POST {TOKEN_PATH}: cannot reach the PBX at {self.base_url} ({exc})") from None
            PBX_REQUEST_SECONDS.labels("token", str(response.status // 100) + "xx").observe(
                time.perf_counter() - started
            )
            if response.status != 200:
                TOKEN_MINTS.labels("refused").inc()
                self._record_token("refused", status=response.status)
                raise PbxHttpError(
                    response.status,
                    f"POST {TOKEN_PATH}: the PBX refused client id {self.client_id!r} "
                    f"(HTTP {response.status} {_detail(response)})",
                )
            try:
                body = json.loads(response.body)
                token = body["access_token"]
                if not isinstance(token, str) or not token:
                    raise KeyError("access_token")
            except (ValueError, KeyError, TypeError, RecursionError):
                TOKEN_MINTS.labels("garbage").inc()
                self._record_token("garbage")
                raise PbxError(f"POST {TOKEN_PATH}: the answer holds no access_token") from None
            now = time.time()
            expires = jwt_expiry(token)
            if expires is None:
                lifetime = body.get("expires_in") if isinstance(body, dict) else None
                expires = now + (
                    float(lifetime) if isinstance(lifetime, (int, float)) and lifetime > 0 else DEFAULT_LIFETIME
                )
            lifetime = max(0.0, expires - now)
            # A margin larger than half the lifetime would mint on every request.
            self._refresh_at = expires - min(self._margin, lifetime / 2)
            self._token = token
            self.token_minted_at = now
            TOKEN_MINTS.labels("ok").inc()
            self._record_token("ok", lifetime=round(lifetime, 1))
            log.info("PBX token minted for client %s, valid %.0f s", self.client_id, lifetime)
            return token

    def _record_token(self, outcome: str, **fields: Any) -> None:
        """A mint for a capture: its outcome and the token's lifetime, never the token."""
        if self.recorder is not None:
            self.recorder.record("token", outcome=outcome, **fields)

    # --- requests ------------------------------------------------------------------------------
    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET `path` (e.g. "/xapi/v1/Users") → decoded JSON; raises PbxHttpError on an error status."""
        try:
            response = await self._send("GET", path, params)
            try:
                body = decode_json(response.body)
            except ValueError:
                raise PbxError(
                    f"GET {path}: the PBX answered something that is not JSON "
                    f"({response.content_type or 'no content type'})"
                ) from None
        except PbxError as exc:
            self._record_xapi(path, params, status=exc.status if isinstance(exc, PbxHttpError) else 0, error=str(exc))
            raise
        self._record_xapi(path, params, body=body)
        return body

    def _record_xapi(self, path: str, params: dict[str, Any] | None, **answer: Any) -> None:
        """An XAPI answer for a capture (Call Control records its own, in the order it applies them)."""
        if self.recorder is not None and path.startswith("/xapi/"):
            self.recorder.record("xapi", path=path, params=params or {}, **answer)

    async def post_json(self, path: str, body: Any) -> Any:
        """POST a JSON body to `path` (a Call Control action) → decoded JSON answer (None when empty)."""
        response = await self._send("POST", path, None, body)
        if not response.body:
            return None
        try:
            return json.loads(response.body)
        except (ValueError, RecursionError):
            raise PbxError(f"POST {path}: the PBX answered something that is not JSON") from None

    async def _send(self, method: str, path: str, params: dict[str, Any] | None, body: Any = None) -> PbxAnswer:
        token = await self.token()
        query = {str(k): str(v) for k, v in params.items()} if params else {}
        content = json.dumps(body).encode() if body is not None else b""
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {token}"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            started = time.perf_counter()
            try:
                response = await self._http.exchange(PbxRequest(method, path, query, headers, content))
            except Unreachable as exc:
                PBX_REQUEST_SECONDS.labels(_kind(path), "error").observe(time.perf_counter() - started)
                raise PbxError(f"{method} {path}: cannot reach the PBX ({exc})") from None
            PBX_REQUEST_SECONDS.labels(_kind(path), str(response.status // 100) + "xx").observe(
                time.perf_counter() - started
            )
            if response.status == 401 and attempt == 1:
                token = await self.renew(token)
                continue
            if response.status >= 300:
                raise PbxHttpError(
                    response.status, f"{method} {path}: HTTP {response.status} {_detail(response)}".rstrip()
                )
            return response
        raise AssertionError("unreachable")

    async def stream(self, path: str, params: dict[str, Any] | None = None) -> AsyncIterator[bytes]:
        """GET `path` and yield its body in chunks of up to 64 KB (recordings)."""
        token = await self.token()
        query = {str(k): str(v) for k, v in params.items()} if params else {}
        for attempt in (1, 2):
            started = time.perf_counter()
            request = PbxRequest("GET", path, query, {"Authorization": f"Bearer {token}"})
            try:
                async with self._http.stream(request) as response:
                    PBX_REQUEST_SECONDS.labels("stream", str(response.status // 100) + "xx").observe(
                        time.perf_counter() - started
                    )
                    if response.status == 401 and attempt == 1:
                        token = await self.renew(token)
                        continue
                    if response.status >= 300:
                        answer = PbxAnswer(response.status, b"".join([c async for c in response.chunks]))
                        raise PbxHttpError(
                            response.status, f"GET {path}: HTTP {response.status} {_detail(answer)}".rstrip()
                        )
                    async for chunk in response.chunks:
                        yield chunk
                    return
            except BrokenOff as exc:
                raise PbxError(f"GET {path}: the download broke off ({exc})") from None
            except Unreachable as exc:
                PBX_REQUEST_SECONDS.labels("stream", "error").observe(time.perf_counter() - started)
                raise PbxError(f"GET {path}: cannot reach the PBX ({exc})") from None
        raise AssertionError("unreachable")

    # --- WebSocket helpers -----------------------------------------------------------------------
    def websocket_url(self, path: str) -> str:
        base = self.base_url
        if base.startswith("https://"):
            return "wss://" + base[len("https://") :] + path
        return "ws://" + base[len("http://") :] + path

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS settings of `verify_tls` for the WebSocket (None for plain ws://)."""
        if not self.base_url.startswith("https://"):
            return None
        if self.verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if isinstance(self.verify, str):
            return ssl.create_default_context(cafile=self.verify)
        return ssl.create_default_context()

    async def aclose(self) -> None:
        await self._http.close()
