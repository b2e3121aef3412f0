"""The dispatcher's small HTTP(S) server for what CRMs send us (install callbacks, click-to-call).

    listener = Listener(sinks, "0.0.0.0:8481", tls_cert="cert.pem", tls_key="key.pem")
    await listener.start()        # serves POST /crm/<name>/<path> for each adapter's routes
    listener.port                 # the bound port (0 in `listen` picks a free one)
    await listener.close()

Cloud CRMs call public HTTPS handlers only: put `[dispatcher] public_url` behind an ingress that
terminates TLS, or give the listener a certificate itself.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable

from aiohttp import web

from .metrics import LISTENER
from .sink import CrmSink, Handler

log = logging.getLogger(__name__)


def _counted(handler: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException:
            raise
        except Exception:  # a broken handler answers 500 and is logged; the listener stays up
            LISTENER.labels("error").inc()
            log.exception("CRM listener: %s %s failed", request.method, request.path)
            return web.Response(status=500, text="internal error\n")
        LISTENER.labels("ok" if response.status < 400 else "rejected").inc()
        return response

    return handle


async def _unknown(request: web.Request) -> web.StreamResponse:
    LISTENER.labels("unknown").inc()
    return web.Response(status=404, text="not found\n")


class Listener:
    def __init__(self, sinks: Iterable[CrmSink], listen: str, tls_cert: str = "", tls_key: str = "") -> None:
        self.sinks = list(sinks)
        self.listen = listen
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.port = 0
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024)
        for sink in self.sinks:
            for route in sink.routes():
                app.router.add_route(route.method, f"/crm/{sink.name}/{route.path}", _counted(route.handler))
        app.router.add_route("*", "/{tail:.*}", _unknown)
        return app

    async def start(self) -> None:
        host, _, port = self.listen.rpartition(":")
        context = None
        if self.tls_cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.tls_cert, self.tls_key or None)
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]") or "0.0.0.0", int(port), ssl_context=context)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else int(port)
        log.info("CRM listener on %s (%s)", self.listen, "https" if context else "http")

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
