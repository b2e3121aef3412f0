"""An aiohttp application served on its own event loop in a daemon thread.

    server = AppThread("fake-crm")
    port = server.start(app)            # port 0: the system picks one, read back here
    ...
    server.stop()                       # every connection closed before it returns

The test's own loop and its subprocesses never wait for the server, and sync tests can use it too.
"""

from __future__ import annotations

import asyncio
import ssl
import threading

from aiohttp import web


class AppThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self, app: web.Application, port: int = 0, tls: ssl.SSLContext | None = None) -> int:
        """Serves `app` on 127.0.0.1:`port` and returns the port it listens on."""
        started = threading.Event()
        bound: list[int] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start())
            self._loop, self._runner = loop, runner
            bound.append(runner.addresses[0][1])
            started.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True, name=self.name)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError(f"{self.name} did not start on port {port}")
        return bound[0]

    async def _close(self) -> None:
        """Closes the server and every connection it accepted while the loop runs. A TLS connection's graceful
        close waits for the client's close_notify, which a stopped loop never reads: those are aborted."""
        assert self._runner is not None and self._runner.server is not None
        transports = [handler.transport for handler in self._runner.server.connections]
        await self._runner.cleanup()
        for transport in transports:
            if transport is not None:
                transport.abort()
        await asyncio.sleep(0)  # an aborted transport closes its socket on the loop's next turn

    def stop(self) -> None:
        """Stops serving; a second call has nothing to do."""
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = self._runner = self._thread = None
