"""HTTP to amoCRM: one request per mapping call, amoCRM's answers sorted into verdicts.

    amo = AmoApi(api, "https://example.amocrm.ru", auth)
    result = await amo.call(Call("call", "POST /api/v4/calls", {"body": [...]}))

| answer | meaning | verdict |
|---|---|---|
| 200, 201, 202 | done | result (the JSON body) |
| 204 | an empty list | result `{}` |
| 400 + validation-errors | amoCRM refuses this data (code `duplicate` when it says it has it) | dead |
| 401 | token refused (OAuth: refreshed once, then) | gone |
| 402, 403 | account not paid, IP blocked, no rights | gone |
| 404 on /api/v2/events | the account no longer takes call notifications (code `not_accepted`) | dead |
| 429 | more than 7 requests a second: waited out in place (1, 2, 4 s), then | retry in 30 s |
| 5xx, no answer | | retry |
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from ...retry import parse_retry_after
from ..client import Answer, JsonApi
from ..errors import CrmError
from ..metrics import REQUESTS, request_outcome
from ..plan import Call
from .auth import AmoAuth
from .mapping import DUPLICATE, NOT_ACCEPTED

log = logging.getLogger(__name__)
LIMITED_RETRY = 30.0  # seconds until the next attempt of an event amoCRM kept refusing for its rate
EVENTS_RETRY = 3600.0  # after a 404, try call notifications again an hour later
EVENTS_PATH = "/api/v2/events"


class AmoApi:
    def __init__(self, api: JsonApi, base_url: str, auth: AmoAuth) -> None:
        self.api = api
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self._events_off_until = 0.0

    async def call(self, call: Call) -> Any:
        verb, _, path = call.method.partition(" ")
        what = f"amo {call.step}"
        if path == EVENTS_PATH and time.monotonic() < self._events_off_until:
            raise CrmError(
                f"{what}: the account no longer takes call notifications", verdict="dead", status=404, code=NOT_ACCEPTED
            )
        answer = await self.request(
            verb, path, what, body=call.params.get("body"), query=call.params.get("query"), realtime=call.realtime
        )
        if answer.status in (200, 201, 202, 204):
            return answer.body if answer.body is not None else {}
        if answer.status == 404 and path == EVENTS_PATH:
            self._events_off_until = time.monotonic() + EVENTS_RETRY
            log.warning(
                "amoCRM answers 404 to call notifications (POST %s): the account no longer takes them; "
                "calls are still logged",
                EVENTS_PATH,
            )
            raise CrmError(
                f"{what}: HTTP 404 (call notifications not accepted)", verdict="dead", status=404, code=NOT_ACCEPTED
            )
        raise self.error(answer, what)

    async def call_json(self, verb: str, path: str, what: str, *, query: Mapping[str, Any] | None = None) -> Any:
        """A read outside the mapping (checks): the JSON answer, or CrmError."""
        answer = await self.request(verb, path, what, query=query)
        if answer.status in (200, 204):
            return answer.body if isinstance(answer.body, dict) else {}
        raise self.error(answer, what)

    async def request(
        self,
        verb: str,
        path: str,
        what: str,
        *,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        realtime: bool = False,
    ) -> Answer:
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        answer = await self.api.send_patiently(
            verb, url, what=what, first_wait=1.0, json_body=body, headers=await self.auth.headers(), realtime=realtime
        )
        if answer.status == 401 and self.auth.refreshable:
            await self.auth.refresh()
            answer = await self.api.send_patiently(
                verb,
                url,
                what=what,
                first_wait=1.0,
                json_body=body,
                headers=await self.auth.headers(),
                realtime=realtime,
            )
        REQUESTS.labels(self.api.crm, request_outcome(answer.status)).inc()
        return answer

    def error(self, answer: Answer, what: str) -> CrmError:
        status = answer.status
        body = answer.body if isinstance(answer.body, dict) else {}
        detail = str(body.get("detail") or body.get("title") or "")
        shown = f"{what}: HTTP {status}" + (f" {detail}" if detail else "")
        if status == 400:
            problems = _validation(body)
            duplicate = any("duplicate" in p.lower() or "exist" in p.lower() for p in problems)
            return CrmError(
                f"{shown}: {'; '.join(problems)[:500]}" if problems else shown,
                verdict="dead",
                status=status,
                code=DUPLICATE if duplicate else "invalid",
            )
        if status == 401:
            return CrmError(
                f"{shown} (the token is wrong, expired or revoked)", verdict="gone", status=status, code="auth"
            )
        if status in (402, 403):
            return CrmError(
                f"{shown} (account not paid, IP blocked or no rights)", verdict="gone", status=status, code="refused"
            )
        if status == 429:  # still refused after the waits in place: the budget is someone else's for now
            wait = parse_retry_after(answer.headers.get("retry-after")) or LIMITED_RETRY
            return CrmError(
                f"{what}: HTTP 429 (more than amoCRM's requests per second)",
                status=status,
                code="limited",
                retry_after=wait,
            )
        return CrmError(shown, verdict="retry" if status >= 500 or status == 0 else "dead", status=status)


def _validation(body: Mapping[str, Any]) -> list[str]:
    """amoCRM's validation errors as "path: code detail" texts."""
    found = []
    for entry in body.get("validation-errors") or []:
        for error in (entry.get("errors") or []) if isinstance(entry, dict) else []:
            if isinstance(error, dict):
                found.append(f"{error.get('path', '')}: {error.get('code', '')} {error.get('detail', '')}".strip())
    return found
