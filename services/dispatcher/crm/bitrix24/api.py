"""The Bitrix24 REST client: one method call at a time, as the application (OAuth token in `auth`) or
through an inbound webhook URL, with every error answer of docs/crm.md's table turned into what it
means for the event.

    api = BitrixApi(settings, http, tokens)
    result = await api.method("user.get", {"filter": {"UF_PHONE_INNER": "101"}})
    rows = await api.pages("user.get", {"filter": {"USER_TYPE": "employee"}})
    answer = await api.call(Call("register", "telephony.externalCall.register", {...}))   # the engine's Caller
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from typing import Any

from ..client import Answer, JsonApi
from ..errors import CrmError
from ..metrics import REQUESTS
from ..plan import Call, Upload
from .auth import TokenKeeper
from .settings import Bitrix24Settings

log = logging.getLogger(__name__)
LIMITED_TRIES = 4  # QUERY_LIMIT_EXCEEDED answers waited out in place before the outbox takes over
MAX_PAGES = 200
# ERROR_CORE texts of values Bitrix24 will never take: the event is dead, no retry can help
_PERMANENT_TEXTS = (
    "unsupported phone number format",
    "unknown type",
    "iso-8601",
    "should be set",
    "should be an array",
    "should be either",
    "should be greater",
    "is empty",
    "wrong file extension",
    "not properly encoded",
    "user is not found",
    "must be a string",
    "should not be empty",
    "required parameters are not set",
)
# the portal refuses us, not this event: stop the adapter like a 410 until someone fixes it
_REFUSALS = {
    "NO_AUTH_FOUND",
    "INVALID_CREDENTIALS",
    "invalid_token",
    "insufficient_scope",
    "ACCESS_DENIED",
    "user_access_error",
    "OVERLOAD_LIMIT",
    "WRONG_AUTH_TYPE",
    "PORTAL_DELETED",
    "INVALID_REQUEST",
    "ERROR_METHOD_NOT_FOUND",
}


def classify(method: str, answer: Answer) -> CrmError:
    """The CrmError an error answer means (docs/crm.md, Bitrix24 errors)."""
    body = answer.body if isinstance(answer.body, dict) else {}
    code = str(body.get("error") or "")
    description = str(body.get("error_description") or "")
    shown = f"{method}: HTTP {answer.status} {code or '-'} {description}".strip()
    if not body:
        shown = f"{method}: HTTP {answer.status} {answer.text[:200]}".strip()
    if code == "OPERATION_TIME_LIMIT" or answer.status == 429:
        reset = body.get("time", {}).get("operating_reset_at") if isinstance(body.get("time"), dict) else None
        wait = max(1.0, float(reset) - time.time()) if isinstance(reset, (int, float)) else 60.0
        return CrmError(
            shown, verdict="retry", status=answer.status, code=code, description=description, retry_after=wait
        )
    if code in _REFUSALS or answer.status in (401, 403):
        return CrmError(shown, verdict="gone", status=answer.status, code=code, description=description)
    if answer.status >= 500 or answer.status < 400:
        return CrmError(shown, verdict="retry", status=answer.status, code=code, description=description)
    lowered = description.lower()
    verdict = "dead" if code == "INVALID_ARGUMENT" or any(t in lowered for t in _PERMANENT_TEXTS) else "retry"
    return CrmError(shown, verdict=verdict, status=answer.status, code=code, description=description)


class BitrixApi:
    def __init__(self, settings: Bitrix24Settings, http: JsonApi, tokens: TokenKeeper) -> None:
        self.settings = settings
        self.http = http
        self.tokens = tokens

    async def call(self, call: Call) -> Any:
        params = dict(call.params)
        if call.upload is not None:
            params[call.upload.field] = await self._content(call.upload)
        return (await self._request(call.method, params, call.realtime))["result"]

    async def method(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        return (await self._request(method, dict(params or {}), False))["result"]

    async def pages(self, method: str, params: Mapping[str, Any]) -> list[Any]:
        """Every row of a list method (50 per page, `start` = the answer's `next`)."""
        rows: list[Any] = []
        start: Any = 0
        for _ in range(MAX_PAGES):
            body = await self._request(method, {**params, "start": start}, False)
            page = body.get("result")
            rows += page if isinstance(page, list) else []
            start = body.get("next")
            if not isinstance(start, int) or not page:
                return rows
        return rows

    async def _content(self, upload: Upload) -> str:
        parts = []
        for url in upload.urls:
            try:
                parts.append(await self.http.fetch(url, what="recording download"))
            except CrmError as exc:
                if exc.status in (403, 404, 410):  # purged or expired: it will never download
                    raise exc.but("dead") from None
                raise
        # mp3 streams join by concatenation: one file per call is all Bitrix24 keeps
        return base64.b64encode(b"".join(parts)).decode()

    async def _request(self, method: str, params: dict[str, Any], realtime: bool) -> dict[str, Any]:
        refreshed = False
        for attempt in range(1, LIMITED_TRIES + 1):
            url, body, token = await self._target(method, params)
            answer = await self.http.send("POST", url, what=method, json_body=body, realtime=realtime)
            if answer.status == 200 and isinstance(answer.body, dict) and "result" in answer.body:
                REQUESTS.labels(self.settings.name, "ok").inc()
                return answer.body
            error = classify(method, answer)
            if error.code == "expired_token" and token and not refreshed:
                refreshed = True
                await self.tokens.refresh(token)
                continue
            if error.code == "QUERY_LIMIT_EXCEEDED" and attempt < LIMITED_TRIES:
                REQUESTS.labels(self.settings.name, "limited").inc()
                # the portal drains its counter at about our rate: wait for a token or two, then longer
                wait = 2.0 ** (attempt - 1) / self.settings.rate
                log.warning(
                    "Bitrix24 %s: the portal's request limit was reached; waiting %.1f s", self.settings.name, wait
                )
                if self.http.limiter is not None:
                    self.http.limiter.slow_down(wait)
                continue
            REQUESTS.labels(self.settings.name, "refused" if error.verdict != "retry" else "unavailable").inc()
            if error.code == "QUERY_LIMIT_EXCEEDED":
                raise error.but("retry", retry_after=30.0)
            raise error
        raise AssertionError("unreachable")

    async def _target(self, method: str, params: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
        """(URL, JSON body, access token used) of one request."""
        if self.settings.webhook_mode:
            return self.settings.rest_url + method, params, ""
        tokens = await self.tokens.current()
        if tokens is None:
            raise CrmError(
                f"{method}: the Bitrix24 application is not installed yet (no OAuth tokens); "
                "save it in the portal so its install callback reaches this dispatcher",
                verdict="retry",
                code="NOT_INSTALLED",
                retry_after=60.0,
            )
        return self.settings.rest_url + method, {**params, "auth": tokens.access_token}, tokens.access_token
