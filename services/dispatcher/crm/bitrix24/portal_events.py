"""What the portal sends us on the dispatcher's listener: the application's install callback and the
click-to-call event (ONEXTERNALCALLSTART).

    POST /crm/<name>/install   ONAPPINSTALL with the app's first OAuth tokens (checked with app.info
                               on the configured portal before they are kept)
    POST /crm/<name>/event     ONEXTERNALCALLSTART: an agent clicked a number in the CRM; the monitor
                               places the call from the agent's extension (3CX makecall)

Bitrix24 posts events as PHP forms (`data[USER_ID]=…&auth[application_token]=…`) and never
retries them, so the handler answers at once and does the work in the background.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from ..errors import CrmError
from ..forms import nested
from ..legstate import LegStore
from ..metrics import CLICKS
from ..sink import CallRefused, PlaceCall
from .api import BitrixApi
from .auth import TokenKeeper, Tokens
from .directory import Directory
from .mapping import FINISH, phone
from .settings import Bitrix24Settings

log = logging.getLogger(__name__)
MAX_EVENT_BODY = 64 * 1024


async def read_event(request: web.Request) -> dict[str, Any]:
    """The posted event as a nested mapping (PHP form or JSON); {} when unreadable."""
    if request.content_length is not None and request.content_length > MAX_EVENT_BODY:
        return {}
    raw = await request.content.read(MAX_EVENT_BODY + 1)
    if len(raw) > MAX_EVENT_BODY:
        return {}
    text = raw.decode("utf-8", "replace")
    if request.content_type == "application/json":
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):
            return {}
        return body if isinstance(body, dict) else {}
    return nested(parse_qsl(text, keep_blank_values=True))


def _text(mapping: Any, key: str) -> str:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, str) else ""


class PortalEvents:
    def __init__(
        self,
        settings: Bitrix24Settings,
        api: BitrixApi,
        tokens: TokenKeeper,
        directory: Directory,
        legs: LegStore,
        place_call: PlaceCall | None,
        bind: Callable[[], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.api = api
        self.tokens = tokens
        self.directory = directory
        self.legs = legs
        self.place_call = place_call
        self.bind = bind  # binds the click-to-call handler once the app is installed
        self.tasks: set[asyncio.Task[None]] = set()

    # --- install callback ------------------------------------------------------------------------
    async def install(self, request: web.Request) -> web.Response:
        body = await read_event(request)
        auth = body.get("auth") if isinstance(body.get("auth"), dict) else {}
        access, refresh = _text(auth, "access_token"), _text(auth, "refresh_token")
        if self.settings.webhook_mode or not (access and refresh and _text(auth, "application_token")):
            return web.Response(status=400, text="expected ONAPPINSTALL with the application's OAuth tokens\n")
        domain = (_text(auth, "domain") or urlsplit(_text(auth, "client_endpoint")).hostname or "").lower()
        if domain != self.settings.portal_host:
            log.warning(
                "Bitrix24 %s: install callback for portal %r refused (configured: %r)",
                self.settings.name,
                domain,
                self.settings.portal_host,
            )
            return web.Response(status=403, text="this dispatcher serves another portal\n")
        try:  # the tokens must work on our portal and belong to our application
            answer = await self.api.http.send(
                "POST", self.settings.rest_url + "app.info", what="app.info", json_body={"auth": access}
            )
        except CrmError as exc:
            return web.Response(status=502, text=f"cannot reach the portal to check the tokens: {exc}\n")
        info = answer.body.get("result") if isinstance(answer.body, dict) else None
        if answer.status != 200 or not isinstance(info, dict) or info.get("CODE") != self.settings.client_id:
            log.warning(
                "Bitrix24 %s: install callback refused: its token is not our application's on %s",
                self.settings.name,
                self.settings.portal_host,
            )
            return web.Response(status=403, text="the tokens are not this application's\n")
        await self.tokens.save(
            Tokens(access, refresh, _text(auth, "application_token"), _text(auth, "member_id"), time.time())
        )
        log.info("Bitrix24 %s: application installed on %s; OAuth tokens kept", self.settings.name, domain)
        self._spawn(self.bind())
        return web.Response(text="installed\n")

    # --- click-to-call -----------------------------------------------------------------------------
    async def event(self, request: web.Request) -> web.Response:
        body = await read_event(request)
        data: dict[str, Any] = body["data"] if isinstance(body.get("data"), dict) else {}
        auth: dict[str, Any] = body["auth"] if isinstance(body.get("auth"), dict) else {}
        if not await self._genuine(_text(auth, "application_token")):
            CLICKS.labels(self.settings.name, "refused").inc()
            log.warning("Bitrix24 %s: an event with a wrong application token was refused", self.settings.name)
            return web.Response(status=401, text="wrong application token\n")
        if str(body.get("event", "")).upper() != "ONEXTERNALCALLSTART":
            return web.Response(text="ignored\n")
        user, number, call_id = _text(data, "USER_ID"), _text(data, "PHONE_NUMBER"), _text(data, "CALL_ID")
        if not user.isdigit() or not phone(number) or not call_id:
            CLICKS.labels(self.settings.name, "refused").inc()
            return web.Response(status=400, text="USER_ID, PHONE_NUMBER and CALL_ID are required\n")
        self._spawn(self._click(int(user), number, call_id, data))
        return web.Response(text="ok\n")

    async def _genuine(self, token: str) -> bool:
        if self.settings.webhook_mode:
            expected = self.settings.event_token
        else:
            tokens = await self.tokens.current()
            expected = tokens.application_token if tokens is not None else ""
        return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())

    async def _click(self, user: int, number: str, call_id: str, data: dict[str, Any]) -> None:
        try:
            await self.directory.users()
        except CrmError as exc:
            log.warning("Bitrix24 %s: cannot read the employees for a click-to-call: %s", self.settings.name, exc)
        extension = self.directory.extension_of(user)
        if not self.settings.click_to_call or self.place_call is None or not extension:
            why = (
                "click-to-call is off ([crm] click_to_call)"
                if not self.settings.click_to_call
                else "no monitor to place calls"
                if self.place_call is None
                else f"Bitrix24 user {user} has no extension (Internal phone)"
            )
            await self._fail(call_id, user, why)
            return
        details = {
            "user_id": user,
            "entity_type": _text(data, "CRM_ENTITY_TYPE"),
            "entity_id": _text(data, "CRM_ENTITY_ID"),
        }
        await self.legs.add_click(self.settings.name, extension, number, call_id, details)
        try:
            placed = await self.place_call(extension, phone(number))
        except CallRefused as exc:
            await self._fail(call_id, user, f"the PBX did not place the call: {exc}")
            return
        CLICKS.labels(self.settings.name, "started").inc()
        log.info(
            "Bitrix24 %s: click-to-call from %s to %s started (chain %s)",
            self.settings.name,
            extension,
            number,
            placed.chain or placed.pbx_call_number,
        )

    async def _fail(self, call_id: str, user: int, why: str) -> None:
        """The click cannot become a call: its Bitrix24 call is finished as not placed, with the reason."""
        CLICKS.labels(self.settings.name, "failed").inc()
        log.warning("Bitrix24 %s: click-to-call %s not placed: %s", self.settings.name, call_id, why)
        try:
            await self.api.method(
                FINISH,
                {
                    "CALL_ID": call_id,
                    "USER_ID": user,
                    "DURATION": 0,
                    "STATUS_CODE": "480",
                    "FAILED_REASON": why[:250],
                    "ADD_TO_CHAT": 0,
                },
            )
        except CrmError as exc:
            log.warning(
                "Bitrix24 %s: cannot finish the unplaced click-to-call %s: %s", self.settings.name, call_id, exc
            )

    def _spawn(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:  # a background step must not vanish silently
                log.exception("Bitrix24 %s: background work failed", self.settings.name)

        task = asyncio.get_running_loop().create_task(guarded())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
