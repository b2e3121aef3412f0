"""A fake CRM: an HTTP server on a free port that records every request it gets.

    async with Receiver() as crm:
        crm.respond(500, 500)               # next two answers; then 200
        ... await crm.wait_for(3)
        crm.requests[0].form()["event"]
        hooks = crm.wait_exactly_sync(4)    # the 4 expected, and no fifth within the grace period

Served by an AppThread (tests/helpers/app_thread.py): a test's subprocesses and the test's loop are never blocked
by it, and sync tests can use it too.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.helpers.app_thread import AppThread


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    received: float = field(default_factory=time.time)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def form_items(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode(), keep_blank_values=True)

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class Receiver:
    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        """`port` 0: the system picks one when it starts (read back into `port`); a given port: a CRM back
        where it was."""
        self.port = port
        self.tls = tls
        self.requests: list[Request] = []
        self._answers: deque[tuple[int, dict[str, str], float]] = deque()
        self._cond = threading.Condition()
        self._server = AppThread("receiver")

    @property
    def url(self) -> str:
        assert self.port, "the receiver has no port before it starts"
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hook"

    def respond(self, *statuses: int, headers: dict[str, str] | None = None, delay: float = 0.0) -> None:
        """Queue the status codes of the next answers (then 200 again)."""
        for status in statuses:
            self._answers.append((status, headers or {}, delay))

    def recover(self) -> None:
        """Drops the answers still queued: 200 from now on (a CRM back after an outage)."""
        self._answers.clear()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status, headers, delay = self._answers.popleft() if self._answers else (200, {}, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if 200 <= status < 300:
            with self._cond:
                self.requests.append(Request(request.path, dict(request.headers), body))
                self._cond.notify_all()
        return web.Response(status=status, text="ok" if status < 400 else "error", headers=headers)

    def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.port = self._server.start(app, self.port, self.tls)
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Receiver:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_sync(self, count: int, timeout: float = 30.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [r.body.decode(errors="replace") for r in self.requests]
                    raise AssertionError(f"expected {count} webhooks within {timeout}s, got {len(got)}: {got}")
                self._cond.wait(left)
            return list(self.requests)

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[Request]:
        return await asyncio.to_thread(self.wait_for_sync, count, timeout)

    def wait_exactly_sync(self, count: int, timeout: float = 30.0, grace: float = 2.0) -> list[Request]:
        """The first `count` webhooks; fails if any more arrive within `grace` seconds after the last of them
        (a duplicate or an invented webhook comes from the same delivery loop, so within a short grace)."""
        hooks = self.wait_for_sync(count, timeout)[:count]
        with self._cond:
            self._cond.wait_for(lambda: len(self.requests) > count, grace)
            extra = [r.body.decode(errors="replace") for r in self.requests[count:]]
        assert not extra, f"expected exactly {count} webhooks, {len(extra)} more arrived: {extra}"
        return hooks

    async def wait_exactly(self, count: int, timeout: float = 30.0, grace: float = 2.0) -> list[Request]:
        return await asyncio.to_thread(self.wait_exactly_sync, count, timeout, grace)
