"""Who is who in the portal: extension → Bitrix24 user (employees' "Internal phone", UF_PHONE_INNER,
overridden by `user_map`), and the application's external lines (one per DID, added when first used).

    directory = Directory(settings, api)
    users = await directory.users()          # {"101": 11, ...}, read again every `users_refresh`
    directory.extension_of(11)               # "101"
    line = await directory.line("74951234567", "Main line")
"""

from __future__ import annotations

import logging
import time

from ..errors import CrmError
from .api import BitrixApi
from .settings import Bitrix24Settings

log = logging.getLogger(__name__)


class Directory:
    def __init__(self, settings: Bitrix24Settings, api: BitrixApi) -> None:
        self.settings = settings
        self.api = api
        self._users: dict[str, int] | None = None
        self._read_at = 0.0
        self._lines: set[str] | None = None

    def stale(self) -> None:
        """An extension was added or deleted: read the employees again before the next call."""
        self._read_at = 0.0

    async def users(self) -> dict[str, int]:
        if self._users is None or time.monotonic() - self._read_at > self.settings.users_refresh:
            try:
                self._users = await self._read_users()
                self._read_at = time.monotonic()
            except CrmError as exc:
                if self._users is None or exc.verdict != "retry":
                    raise
                log.warning(
                    "Bitrix24 %s: cannot read the employees (%s); keeping the last map", self.settings.name, exc
                )
        assert self._users is not None
        return self._users

    async def _read_users(self) -> dict[str, int]:
        rows = await self.api.pages(
            "user.get", {"filter": {"USER_TYPE": "employee", "ACTIVE": True}, "sort": "ID", "order": "ASC"}
        )
        found: dict[str, int] = {}
        for row in rows:
            inner = str(row.get("UF_PHONE_INNER") or "").strip() if isinstance(row, dict) else ""
            if inner and str(row.get("ID", "")).isdigit():
                found.setdefault(inner, int(row["ID"]))
        found.update(self.settings.user_map)
        log.info("Bitrix24 %s: %d extensions mapped to employees", self.settings.name, len(found))
        return found

    def extension_of(self, user_id: int) -> str:
        for extension, user in (self._users or dict(self.settings.user_map)).items():
            if user == user_id:
                return extension
        return ""

    async def line(self, did: str, name: str) -> str:
        """The LINE_NUMBER of a call to `did` (`line` when configured, else the DID, made a line)."""
        if self.settings.line:
            return self.settings.line
        if not did or self.settings.webhook_mode:  # external lines are the application's own
            return did
        if self._lines is None:
            rows = await self.api.method("telephony.externalLine.get")
            self._lines = (
                {str(r.get("NUMBER")) for r in rows if isinstance(r, dict)} if isinstance(rows, list) else set()
            )
        if did not in self._lines:
            try:
                await self.api.method(
                    "telephony.externalLine.add", {"NUMBER": did, "NAME": name or did, "CRM_AUTO_CREATE": "N"}
                )
            except CrmError as exc:
                if "already exists" not in exc.description.lower():
                    raise
            self._lines.add(did)
        return did
