"""`tcxhooks check` for the `[crm:NAME]` sections: each adapter built as the dispatcher builds it, with
the shared store (where its tokens are), asked for its read-only probes, and closed.

    lines = await check_crms(settings, store_url)   # [CheckLine("b24 auth", True, "..."), ...]
"""

from __future__ import annotations

from tcxhooks.platform.store import open_store

from ..config import DispatcherSettings
from .legstate import LegStore
from .registry import build_sink
from .sink import CheckLine, SinkDeps


async def check_crms(settings: DispatcherSettings, store_url: str) -> list[CheckLine]:
    if not settings.crms:
        return []
    store = await open_store(store_url)
    try:
        legs = LegStore(store)
        await legs.migrate()
        deps = SinkDeps(legs, settings.dispatcher.public_url, None, settings.dispatcher.keep_days)
        lines: list[CheckLine] = []
        for crm in settings.crms:
            sink = build_sink(crm, deps)
            try:
                lines += await sink.check()
            except Exception as exc:  # a probe that breaks is a failed line, never a crash of check
                lines.append(CheckLine(f"{crm.name} {crm.type}", False, f"check failed: {type(exc).__name__}: {exc}"))
            finally:
                await sink.close()
        return lines
    finally:
        await store.close()
