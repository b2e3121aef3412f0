"""What every fake CRM shares: a request log, a rate limit, and running on a loop or in a thread.

    class FakeThing(FakeCrm):
        name = "thing"
        def add_routes(self, app: web.Application) -> None: ...

    fake = FakeThing()
    await fake.start()                 # on the running loop; fake.url is http://127.0.0.1:<port>
    with FakeThing().in_thread() as fake:   # from synchronous code (tests)
        fake.requests[0].json
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterator, Self

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    """One request as the fake received it, with the status it answered."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    at: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class RateLimit:
    """At most `per_second` requests in any sliding second; the refused ones do not count."""

    def __init__(self, per_second: float | None) -> None:
        self.per_second = per_second
        self._served: deque[float] = deque()

    def allow(self, now: float) -> bool:
        if not self.per_second:
            return True
        while self._served and now - self._served[0] >= 1.0:
            self._served.popleft()
        if len(self._served) >= self.per_second:
            return False
        self._served.append(now)
        return True


class FakeCrm:
    """An aiohttp application on 127.0.0.1 that records every request and may refuse them above a rate."""

    name = "crm"

    def __init__(self, rate_limit: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.requests: list[Recorded] = []
        self.rate = RateLimit(rate_limit)
        self.refused = 0  # requests answered "too many requests"
        self._refuse = 0  # the next requests to refuse whatever the rate
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def too_many(self) -> web.StreamResponse:
        """The answer above the rate limit."""
        return web.Response(status=429, text="Too Many Requests")

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        self.add_routes(app)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        entry = Recorded(request.method, request.path, list(request.query.items()), dict(request.headers),
                         await request.read())
        with self._lock:
            self.requests.append(entry)
        if self._refuse > 0 or not self.rate.allow(self.clock()):
            self._refuse = max(0, self._refuse - 1)
            self.refused += 1
            response = self.too_many()
        else:
            response = await handler(request)
        entry.status = response.status
        return response

    def refuse_next(self, count: int) -> None:
        """Answers the next `count` requests "too many requests", as when other clients use the budget."""
        self._refuse = count

    def requests_to(self, path_part: str, method: str = "POST") -> list[Recorded]:
        """Requests whose path contains `path_part`, answered with anything but "too many requests"."""
        with self._lock:
            return [r for r in self.requests if path_part in r.path and r.method == method and r.status != 429]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.url = f"http://{shown}:{sock.getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[Self]:
        """Serves on a loop of its own in a background thread while the block runs."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"fake-{self.name}", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(10)
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
