"""The Bitrix24 sink: each event becomes its telephony REST calls (mapping.py), with the user map, the
lines, click-to-call correlation and the `tcxhooks check` probes around it.

    sink = Bitrix24Sink(settings, deps)
    reply = await sink.deliver(event)         # register / show / hide / finish / attachRecord / …
    lines = await sink.check()                # auth, line, users, click-to-call: nothing changed in the CRM
"""

from __future__ import annotations

import asyncio
import logging
import time

from tcxhooks.platform.waiting import sleep_or_stop
from tcxhooks.v1 import events_pb2

from ..client import JsonApi
from ..engine import Trace, run_steps
from ..errors import CrmError
from ..event import CrmEvent
from ..sink import CheckLine, Route, SinkDeps, SinkReply, deliver_with, delivered, failed, fresh
from .api import BitrixApi
from .auth import TokenKeeper
from .directory import Directory
from .mapping import BitrixMapping, Context, Leg
from .portal_events import PortalEvents
from .settings import Bitrix24Settings

log = logging.getLogger(__name__)
CLICK_EVENT = "ONEXTERNALCALLSTART"
PRUNE_EVERY = 3600.0


class Bitrix24Sink:
    def __init__(self, settings: Bitrix24Settings, deps: SinkDeps) -> None:
        self.name = settings.name
        self.target = settings.target
        self.settings = settings
        self.deps = deps
        self.http = JsonApi.of(settings)
        self.tokens = TokenKeeper(settings, deps.legs, self.http)
        self.api = BitrixApi(settings, self.http, self.tokens)
        self.directory = Directory(settings, self.api)
        self.mapping = BitrixMapping()
        self.events = PortalEvents(
            settings, self.api, self.tokens, self.directory, deps.legs, deps.place_call, self.bind_click_handler
        )

    @property
    def handler_url(self) -> str:
        return f"{self.deps.public_url.rstrip('/')}/crm/{self.name}/event" if self.deps.public_url else ""

    # --- delivery ------------------------------------------------------------------------------
    async def deliver(self, event: events_pb2.Event) -> SinkReply:
        reply = await deliver_with(event, self._steps)
        if reply.verdict == "gone":
            log.error("Bitrix24 %s refuses us: %s", self.name, reply.error)
        return reply

    async def _steps(self, view: CrmEvent, trace: Trace) -> None:
        if view.kind in ("extension_added", "extension_deleted"):
            self.directory.stale()
        elif self.mapping.key(view) is not None:
            context = await self._context(view)
            await self._take_click(view)
            await run_steps(
                self.mapping,
                view,
                context,
                legs=self.deps.legs,
                crm=self.name,
                caller=self.api,
                fresh=context.fresh,
                trace=trace,
            )

    async def ping(self) -> SinkReply:
        trace = Trace()
        try:
            trace.lines.append(await self._auth_probe())
        except CrmError as error:
            return failed(error, trace)
        trace.status = 200
        return delivered(trace)

    async def _context(self, view: CrmEvent) -> Context:
        users = await self.directory.users()
        line = await self.directory.line(view.did, view.did_name) if view.is_call else ""
        return Context(
            users, self.settings.default_user, line, fresh(view, self.settings.stale_after), self.settings.options
        )

    async def _take_click(self, view: CrmEvent) -> None:
        """The first leg of an outbound call an agent asked for by a click is finished under the
        CALL_ID Bitrix24 registered for that click: it is never registered again."""
        if not (self.settings.click_to_call and view.is_call and view.direction == "out" and view.link <= 1):
            return
        key = self.mapping.key(view)
        if key is None or await self.deps.legs.get(self.name, key) is not None:
            return
        click = await self.deps.legs.take_click(
            self.name, view.chain, view.user, view.caller, self.settings.click_window
        )
        if click is None:
            return
        user = int(click.details.get("user_id") or 0)
        entity = str(click.details.get("entity_id") or "")
        leg = Leg(
            call_id=click.crm_call_id,
            user_id=user,
            shown=(user,) if user else (),
            clicked=True,
            entity_type=str(click.details.get("entity_type") or "") if entity.isdigit() else "",
            entity_id=int(entity) if entity.isdigit() else 0,
        )
        await self.deps.legs.put(self.name, key, self.mapping.dump(leg))
        log.info("Bitrix24 %s: call %s is the click-to-call %s", self.name, view.chain, click.crm_call_id)

    # --- background upkeep ---------------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        """Reads the employees, binds the click-to-call handler, prunes old leg states; until stopping."""
        await self.bind_click_handler()
        last_prune = float("-inf")
        while not stopping.is_set():
            try:
                await self.directory.users()
                if time.monotonic() - last_prune > PRUNE_EVERY:
                    last_prune = time.monotonic()
                    await self.deps.legs.prune(self.deps.keep_days * 86400.0)
            except CrmError as exc:
                log.warning("Bitrix24 %s: %s", self.name, exc)
            except Exception as exc:  # the store may be briefly down: the next round tries again
                log.warning("Bitrix24 %s upkeep failed: %s", self.name, exc)
            await sleep_or_stop(min(60.0, self.settings.users_refresh), stopping)

    async def bind_click_handler(self) -> None:
        """event.bind ONEXTERNALCALLSTART → our listener (OAuth mode, once installed; idempotent)."""
        if not self.settings.click_to_call or self.settings.webhook_mode or not self.handler_url:
            return
        if await self.tokens.current() is None:
            return
        try:
            await self.api.method("event.bind", {"event": CLICK_EVENT, "handler": self.handler_url})
            log.info("Bitrix24 %s: click-to-call handler bound: %s", self.name, self.handler_url)
        except CrmError as exc:
            if "already binded" not in exc.description.lower():
                log.warning("Bitrix24 %s: cannot bind the click-to-call handler: %s", self.name, exc)

    def routes(self) -> list[Route]:
        return [Route("POST", "install", self.events.install), Route("POST", "event", self.events.event)]

    # --- tcxhooks check ---------------------------------------------------------------------------
    async def _auth_probe(self) -> str:
        if self.settings.webhook_mode:
            try:
                await self.api.method("telephony.externalLine.get")
            except CrmError as exc:
                if exc.code == "WRONG_AUTH_TYPE":
                    raise exc.but("gone") from None
                raise
            return "inbound webhook accepted for telephony methods"
        if await self.tokens.current() is None:
            raise CrmError(
                "the Bitrix24 application is not installed yet (no OAuth tokens)", verdict="retry", code="NOT_INSTALLED"
            )
        info = await self.api.method("app.info")
        code = info.get("CODE") if isinstance(info, dict) else None
        if code != self.settings.client_id:
            raise CrmError(
                f"the stored tokens belong to application {code!r}, not {self.settings.client_id!r}",
                verdict="gone",
                code="WRONG_APP",
            )
        return f"application {code} installed on {self.settings.portal_host}"

    async def check(self) -> list[CheckLine]:
        """Probes that change nothing in the portal: auth, line, user map, click-to-call handler."""
        from .checks import run_checks

        return await run_checks(self)

    async def close(self) -> None:
        await self.events.close()
        await self.http.close()
