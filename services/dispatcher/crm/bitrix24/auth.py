"""The Bitrix24 application's OAuth tokens: kept in the store, refreshed when the portal says they
expired (each refresh returns a new pair that replaces the old one), checked when an install
callback brings new ones.

    tokens = TokenKeeper(settings, legs, http)
    current = await tokens.current()                  # None until the app is installed
    fresh = await tokens.refresh(current.access_token) # after an `expired_token` answer
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..client import JsonApi
from ..errors import CrmError
from ..legstate import LegStore
from .settings import Bitrix24Settings

log = logging.getLogger(__name__)
STORE_NAME = "oauth"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    application_token: str  # what the portal's event posts carry (auth[application_token])
    member_id: str
    refreshed_at: float


class TokenKeeper:
    def __init__(self, settings: Bitrix24Settings, legs: LegStore, http: JsonApi) -> None:
        self.settings = settings
        self.legs = legs
        self.http = http
        self._tokens: Tokens | None = None
        self._lock = asyncio.Lock()

    async def current(self) -> Tokens | None:
        if self._tokens is None:
            self._tokens = await self._load()
        return self._tokens

    async def _load(self) -> Tokens | None:
        raw = await self.legs.value(self.settings.name, STORE_NAME)
        if raw is None:
            return None
        try:
            return Tokens(**json.loads(raw))
        except (ValueError, TypeError):
            log.error(
                "Bitrix24 adapter %s: the stored OAuth tokens cannot be read; install the app again", self.settings.name
            )
            return None

    async def save(self, tokens: Tokens) -> None:
        await self.legs.set_value(self.settings.name, STORE_NAME, json.dumps(asdict(tokens)))
        self._tokens = tokens

    async def refresh(self, stale: str) -> Tokens:
        """New tokens after `stale` was refused as expired; one refresh at a time, and none when
        another task or replica already replaced `stale`."""
        async with self._lock:
            stored = await self._load()
            if stored is not None and stored.access_token != stale:
                self._tokens = stored
                return stored
            if stored is None:
                raise CrmError(
                    "the Bitrix24 application is not installed (no OAuth tokens)",
                    verdict="retry",
                    code="NOT_INSTALLED",
                    retry_after=60.0,
                )
            # posted as a form, as Bitrix24's own SDK does: the secrets stay out of the URL (and of any log of it)
            form = {
                "grant_type": "refresh_token",
                "client_id": self.settings.client_id,
                "client_secret": self.settings.client_secret,
                "refresh_token": stored.refresh_token,
            }
            answer = await self.http.send("POST", self.settings.oauth_url, what="OAuth token refresh", form=form)
            body: Any = answer.body if isinstance(answer.body, dict) else {}
            if answer.status != 200 or not body.get("access_token") or not body.get("refresh_token"):
                again = await self._load()  # another replica may have spent the refresh token first
                if again is not None and again.access_token != stale:
                    self._tokens = again
                    return again
                code = str(body.get("error") or answer.status)
                verdict = "retry" if answer.status >= 500 or answer.status == 0 else "gone"
                raise CrmError(
                    f"OAuth token refresh refused ({code}): install the Bitrix24 app again",
                    verdict=verdict,
                    status=answer.status,
                    code=code,
                )
            tokens = Tokens(
                str(body["access_token"]),
                str(body["refresh_token"]),
                stored.application_token,
                str(body.get("member_id") or stored.member_id),
                time.time(),
            )
            await self.save(tokens)
            log.info("Bitrix24 adapter %s: OAuth tokens refreshed", self.settings.name)
            return tokens
