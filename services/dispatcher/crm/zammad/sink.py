"""The Zammad adapter as the dispatcher sees it: `[crm:NAME] type = zammad`.

    sink = ZammadSink("zammad", url="https://zammad.example.com/api/v1/cti/TOKEN", settings, deps, api)
    reply = await sink.deliver(event)       # newCall / answer / hangup as the chain needs
    lines = await sink.check()              # the invalid-direction probe: changes nothing in Zammad

Zammad times a call by when each request arrives (the CTI API has no time field), so its deliveries
want a short, real-time retry schedule (the [crm] section's `retry_schedule`, docs/crm.md).
"""
from __future__ import annotations

import asyncio
import uuid

from tcxhooks.v1 import events_pb2

from ..client import JsonApi
from ..engine import Trace, run_steps
from ..errors import CrmError
from ..event import CrmEvent
from ..sink import CheckLine, Route, SinkDeps, SinkReply, delivered, failed, fresh
from .client import ZammadCti
from .mapping import ZammadMapping, ZammadSettings

FIX_URL = "copy the endpoint from Zammad (Admin → Integrations → CTI (generic)) into [crm] url, token included"


class ZammadSink:
    def __init__(self, name: str, url: str, settings: ZammadSettings, deps: SinkDeps, api: JsonApi,
                 stale_after: float = 20.0) -> None:
        self.name = name
        self.settings = settings
        self.deps = deps
        self.api = api
        self.cti = ZammadCti(api, url)
        self.mapping = ZammadMapping()
        self.stale_after = stale_after

    async def deliver(self, event: events_pb2.Event) -> SinkReply:
        try:
            view = CrmEvent.of(event)
        except ValueError as exc:
            return SinkReply("dead", 0, "", f"unreadable event: {exc}")
        trace = Trace()
        try:
            await run_steps(self.mapping, view, self.settings, legs=self.deps.legs, crm=self.name, caller=self.cti,
                            fresh=fresh(view, self.stale_after), trace=trace)
        except CrmError as error:
            return failed(error, trace)
        return delivered(trace)

    async def run(self, stopping: asyncio.Event) -> None:
        await stopping.wait()  # nothing to keep up: the CTI endpoint has no tokens and no user list

    def routes(self) -> list[Route]:
        return []

    async def check(self) -> list[CheckLine]:
        """Posts a `newCall` with direction "check": Zammad checks the integration and the token,
        then refuses the direction (422 "Invalid direction!") before it writes a caller-log row."""
        item = f"{self.name} cti"
        probe = {"event": "newCall", "from": "tcxhooks-check", "to": "tcxhooks-check", "direction": "check",
                 "callId": f"tcxhooks-check-{uuid.uuid4().hex[:12]}"}
        try:
            answer = await self.cti.post(probe, "zammad probe")
        except CrmError as error:
            return [CheckLine(item, False, str(error), "check [crm] url: host, port, TLS")]
        message = str(answer.body.get("error", "")) if isinstance(answer.body, dict) else ""
        if answer.status == 422 and message == "Invalid direction!":
            return [CheckLine(item, True, "token accepted, CTI (generic) integration on and configured "
                                          "(the probe writes no caller-log row)")]
        if answer.status == 401:
            return [CheckLine(item, False, "Zammad refused the token (401)", FIX_URL)]
        if answer.status == 422 and "disabled" in message:
            return [CheckLine(item, False, f"Zammad: {message}",
                              "switch on Admin → Integrations → CTI (generic) in Zammad")]
        if answer.status == 422 and "configured" in message:
            return [CheckLine(item, False, f"Zammad: {message}",
                              "open Admin → Integrations → CTI (generic) in Zammad and save its settings once")]
        return [CheckLine(item, False, f"unexpected answer HTTP {answer.status} {answer.text[:200]}",
                          "[crm] url must be Zammad's CTI (generic) endpoint: https://HOST/api/v1/cti/TOKEN")]

    async def close(self) -> None:
        await self.api.close()
