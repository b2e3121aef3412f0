"""Pinging an endpoint (docs/webhooks.md §4, "Test ping"): proves it answers and accepts our
credentials. Used by the PingEndpoint RPC and by `tcxhooks check` when no dispatcher runs."""

from __future__ import annotations

import time

from tcxhooks.v1 import dispatcher_service_pb2 as pb

from .endpoints import Endpoint
from .sinks import Verdict


async def ping(endpoint: Endpoint) -> pb.PingResult:
    """Pings `endpoint` now through its sink and reports the answer."""
    started = time.perf_counter()
    result = await endpoint.sink.ping()
    return pb.PingResult(
        endpoint=endpoint.name,
        ok=result.verdict is Verdict.DELIVERED,
        http_status=result.status,
        error=result.error,
        latency_seconds=time.perf_counter() - started,
    )
