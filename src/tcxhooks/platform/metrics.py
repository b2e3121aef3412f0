"""Prometheus metrics shared by every service: build info, dependency state, gRPC server/client.

Service-specific metrics live in `services/<name>/metrics.py` (module level, created once).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from tcxhooks import __version__

BUILD_INFO = Gauge("tcxhooks_build_info", "Build information", ["service", "version"])
DEPENDENCY_UP = Gauge("tcxhooks_dependency_up", "1 while a dependency check passes", ["service", "dependency"])
GRPC_SERVER_HANDLED = Counter(
    "grpc_server_handled_total", "RPCs completed on the server", ["grpc_service", "grpc_method", "grpc_code"]
)
GRPC_SERVER_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "RPC handling time on the server",
    ["grpc_service", "grpc_method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GRPC_CLIENT_HANDLED = Counter(
    "grpc_client_handled_total", "RPCs completed by clients", ["grpc_service", "grpc_method", "grpc_code"]
)
# reason: missing_token, wrong_token (auth.py), too_large, malformed (limits.py)
GRPC_REFUSED = Counter(
    "tcxhooks_grpc_refused_total", "gRPC calls refused before reaching the service", ["service", "reason"]
)


def start_metrics(service: str, port: int, host: str = "0.0.0.0") -> int:
    """Serves /metrics on `port` (0: any free port); returns the port in use."""
    BUILD_INFO.labels(service=service, version=__version__).set(1)
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_address[1])


def _split(method: str) -> tuple[str, str]:
    _, service, name = method.split("/", 2) if method.count("/") >= 2 else ("", "unknown", method)
    return service, name


class ServerMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every unary and server-streaming RPC."""

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        service, method = _split(details.method)

        def record(started: float, context: Any) -> None:
            code = context.code() if hasattr(context, "code") else None
            name = code.name if isinstance(code, grpc.StatusCode) else ("OK" if code in (None, 0) else str(code))
            GRPC_SERVER_HANDLED.labels(service, method, name).inc()
            GRPC_SERVER_SECONDS.labels(service, method).observe(time.perf_counter() - started)

        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await inner_uu(request, context)
                finally:
                    record(started, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: Any) -> Any:
                started = time.perf_counter()
                try:
                    async for item in inner_us(request, context):
                        yield item
                finally:
                    record(started, context)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
