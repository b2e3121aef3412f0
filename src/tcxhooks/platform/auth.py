"""The shared service token: required of every RPC but health, checked before a request is read.

    interceptor = TokenAuthInterceptor(token, "dispatcher")   # first of create_server's interceptors

A refused call is answered UNAUTHENTICATED by a handler that never reads the request, so a caller
without the token cannot make the server hold its message in memory (only gRPC's flow-control window
of it ever arrives). Each refusal is counted (`tcxhooks_grpc_refused_total{reason}`) and logged,
at most one line per `LOG_EVERY` seconds with the number of refusals since the previous line.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from .metrics import GRPC_REFUSED

log = logging.getLogger(__name__)

HEALTH_PREFIX = "/grpc.health.v1.Health/"
LOG_EVERY = 10.0
_SHOWN_METHOD = 80  # characters of a caller's method name in a log line


class RefusalLog:
    """One warning per `every` seconds about refused calls, naming the latest and how many came since."""

    def __init__(self, every: float = LOG_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.every, self.clock = every, clock
        self._next = 0.0
        self._unlogged = 0

    def refused(self, reason: str, method: str, peer: str) -> None:
        self._unlogged += 1
        now = self.clock()
        if now < self._next:
            return
        more = f" ({self._unlogged - 1} more refused since the last report)" if self._unlogged > 1 else ""
        log.warning(
            "refused a call without the service token (%s): %r from %s%s", reason, method[:_SHOWN_METHOD], peer, more
        )
        self._next, self._unlogged = now + self.every, 0


def _deny(service: str, reason: str, message: str, method: str, report: RefusalLog) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler answering UNAUTHENTICATED; request-streaming, so gRPC leaves the request unread."""

    async def abort(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        GRPC_REFUSED.labels(service, reason).inc()
        report.refused(reason, method, context.peer())
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.stream_unary_rpc_method_handler(
        abort, request_deserializer=lambda raw: raw, response_serializer=lambda raw: raw
    )


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Requires `authorization: Bearer <token>` on every RPC but health checks."""

    def __init__(self, token: str, service: str) -> None:
        self._expected = f"Bearer {token}".encode()
        self._service = service
        self._report = RefusalLog()

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        method = details.method if isinstance(details.method, str) else details.method.decode(errors="replace")
        if method.startswith(HEALTH_PREFIX):
            return await continuation(details)
        given = b""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                given = value if isinstance(value, bytes) else value.encode(errors="replace")
        if not given:
            return _deny(
                self._service, "missing_token", "missing service token (authorization: Bearer …)", method, self._report
            )
        if not hmac.compare_digest(given, self._expected):
            return _deny(self._service, "wrong_token", "wrong service token", method, self._report)
        return await continuation(details)
