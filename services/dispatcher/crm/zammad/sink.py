"""The Zammad adapter as the dispatcher sees it: `[crm:NAME] type = zammad`.

    sink = ZammadSink(ZammadSettings("zammad", url="https://zammad.example.com/api/v1/cti/TOKEN"), deps)
    reply = await sink.deliver(event)       # newCall / answer / hangup as the chain needs
    lines = await sink.check()              # the invalid-direction probe: changes nothing in Zammad

Zammad times a call by when each request arrives (the CTI API has no time field), so its deliveries
want a short, real-time retry schedule (`ZammadSettings.retry_schedule`, docs/crm.md).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from tcxhooks.platform.waiting import sleep_or_stop
from tcxhooks.v1 import events_pb2

from ..client import Answer, JsonApi
from ..engine import Trace, run_steps
from ..errors import CrmError
from ..event import CrmEvent
from ..sink import CheckLine, Route, SinkDeps, SinkReply, deliver_with, delivered, failed, fresh
from .client import ZammadCti
from .mapping import ZammadMapping
from .settings import ZammadSettings

log = logging.getLogger(__name__)
PRUNE_EVERY = 3600.0

FIX_URL = (
    "from Zammad's Admin → Integrations → CTI (generic) endpoint https://SERVER/api/v1/cti/TOKEN: "
    "[crm] url = https://SERVER, token = TOKEN"
)


class ZammadSink:
    def __init__(self, settings: ZammadSettings, deps: SinkDeps) -> None:
        self.name = settings.name
        self.target = settings.target
        self.settings = settings
        self.deps = deps
        self.http = JsonApi.of(settings)
        self.cti = ZammadCti(self.http, settings.url)
        self.mapping = ZammadMapping()

    async def deliver(self, event: events_pb2.Event) -> SinkReply:
        return await deliver_with(event, self._steps)

    async def _steps(self, view: CrmEvent, trace: Trace) -> None:
        await run_steps(
            self.mapping,
            view,
            self.settings.options,
            legs=self.deps.legs,
            crm=self.name,
            caller=self.cti,
            fresh=fresh(view, self.settings.stale_after),
            trace=trace,
        )

    async def ping(self) -> SinkReply:
        """The invalid-direction probe: proves the URL, the token and that the integration is on."""
        trace = Trace()
        try:
            answer = await self._probe()
        except CrmError as error:
            return failed(error, trace)
        trace.status = answer.status
        if _probe_passed(answer):
            trace.lines.append("Zammad CTI answers and takes the token (probe: invalid direction, nothing logged)")
            return delivered(trace)
        return failed(self.cti.error(answer, "zammad probe"), trace)

    async def _probe(self) -> Answer:
        return await self.cti.post(
            {
                "event": "newCall",
                "from": "tcxhooks-check",
                "to": "tcxhooks-check",
                "direction": "check",
                "callId": f"tcxhooks-check-{uuid.uuid4().hex[:12]}",
            },
            "zammad probe",
        )

    async def run(self, stopping: asyncio.Event) -> None:
        """Prunes old leg states (the CTI endpoint has no tokens or user list to keep up)."""
        while not stopping.is_set():
            try:
                await self.deps.legs.prune(self.deps.keep_days * 86400.0)
            except Exception as exc:  # the store may be briefly down: the next round tries again
                log.warning("Zammad %s: pruning old leg states failed: %s", self.name, exc)
            await sleep_or_stop(PRUNE_EVERY, stopping)

    def routes(self) -> list[Route]:
        return []

    async def check(self) -> list[CheckLine]:
        """Posts a `newCall` with direction "check": Zammad checks the integration and the token,
        then refuses the direction (422 "Invalid direction!") before it writes a caller-log row."""
        item = f"{self.name} cti"
        try:
            answer = await self._probe()
        except CrmError as error:
            return [CheckLine(item, False, str(error), "check [crm] url: host, port, TLS")]
        message = str(answer.body.get("error", "")) if isinstance(answer.body, dict) else ""
        if _probe_passed(answer):
            return [
                CheckLine(
                    item,
                    True,
                    "token accepted, CTI (generic) integration on and configured (the probe writes no caller-log row)",
                )
            ]
        if answer.status == 401:
            return [CheckLine(item, False, "Zammad refused the token (401)", FIX_URL)]
        if answer.status == 422 and "disabled" in message:
            return [
                CheckLine(item, False, f"Zammad: {message}", "switch on Admin → Integrations → CTI (generic) in Zammad")
            ]
        if answer.status == 422 and "configured" in message:
            return [
                CheckLine(
                    item,
                    False,
                    f"Zammad: {message}",
                    "open Admin → Integrations → CTI (generic) in Zammad and save its settings once",
                )
            ]
        return [
            CheckLine(
                item,
                False,
                f"unexpected answer HTTP {answer.status} {answer.text[:200]}",
                "[crm] url must be Zammad's CTI (generic) endpoint: https://HOST/api/v1/cti/TOKEN",
            )
        ]

    async def close(self) -> None:
        await self.http.close()


def _probe_passed(answer: Answer) -> bool:
    """Zammad refused only the direction: it checked that the integration is on and the token."""
    return answer.status == 422 and isinstance(answer.body, dict) and answer.body.get("error") == "Invalid direction!"
