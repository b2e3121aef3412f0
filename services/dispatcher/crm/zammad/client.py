"""HTTP to Zammad's generic CTI endpoint: one POST per event, Zammad's answers sorted into verdicts.

    cti = ZammadCti(api, url="https://zammad.example.com/api/v1/cti/TOKEN")
    result = await cti.call(Call("newCall", "newCall", {...}))    # {} or {"action": "reject", ...}

The URL holds the only credential (the token in its path), so it never appears in an error text.
What Zammad answers (docs/crm.md, "Zammad"):

| answer | meaning | verdict |
|---|---|---|
| 200 | done; `newCall` may carry `{"action":"reject"}` or `{"action":"dial"}` | result |
| 401 | the token is wrong | gone |
| 422 "Feature is disabled…" / "Feature not configured…" | the integration is off or unsaved | gone |
| 422 other (e.g. "Invalid direction!") | Zammad cannot take this request | dead |
| 500 "Object already exists!" | `newCall` for a call it has (code `exists`) | retry |
| 500 other | an error Zammad shows only in its log, e.g. "No such call_id" (code `server`) | retry |
| 429, 503 | a proxy's or Zammad's limit: waited out in place (½, 1, 2 s), then | retry in 5 s |
"""

from __future__ import annotations

from typing import Any

from ...retry import parse_retry_after
from ..client import Answer, JsonApi
from ..errors import CrmError
from ..metrics import REQUESTS, request_outcome
from ..plan import Call
from .mapping import EXISTS, SERVER

LIMITED_RETRY = 5.0  # seconds until the next attempt of an event still refused for a limit (Zammad: real time)


class ZammadCti:
    def __init__(self, api: JsonApi, url: str) -> None:
        self.api = api
        self.url = url

    async def post(self, body: dict[str, Any], what: str) -> Answer:
        answer = await self.api.send_patiently("POST", self.url, what=what, first_wait=0.5, json_body=body)
        REQUESTS.labels(self.api.crm, request_outcome(answer.status)).inc()
        return answer

    async def call(self, call: Call) -> Any:
        answer = await self.post(dict(call.params), f"zammad {call.step}")
        if answer.status == 200:
            return answer.body if isinstance(answer.body, dict) else {}
        raise self.error(answer, f"zammad {call.step}")

    def error(self, answer: Answer, what: str) -> CrmError:
        status = answer.status
        message = str(answer.body.get("error", "")) if isinstance(answer.body, dict) else ""
        shown = f"{what}: HTTP {status}" + (f" {message}" if message else "")
        if status == 401:
            return CrmError(
                f"{shown} (the CTI token in [crm] url is not Zammad's)", verdict="gone", status=status, code="token"
            )
        if status == 422 and message.startswith("Feature"):
            return CrmError(shown, verdict="gone", status=status, code="disabled")
        if status == 500:
            return CrmError(shown, status=status, code=EXISTS if message == "Object already exists!" else SERVER)
        if status in (429, 503):  # still refused after the waits in place
            wait = parse_retry_after(answer.headers.get("retry-after")) or LIMITED_RETRY
            return CrmError(shown, status=status, code="limited", retry_after=wait)
        if status == 404:
            return CrmError(f"{shown} (no CTI endpoint at [crm] url)", verdict="gone", status=status, code="url")
        return CrmError(shown, verdict="dead" if 400 <= status < 500 else "retry", status=status)
