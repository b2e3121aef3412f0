"""The signed `ping` webhook (webhooks.md §4, "Test ping"): proves an endpoint answers and verifies.

Used by the PingEndpoint RPC and by `tcxhooks check` when no dispatcher is running.
"""
from __future__ import annotations

import time
import uuid

from tcxhooks.platform.config import Config
from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tcxhooks.v1 import events_pb2

from .endpoints import Endpoint
from .filters import EndpointFilter
from .signing import Signer
from .transport import Timeouts, TransportError, open_transport


def ping_event() -> tuple[str, events_pb2.Event]:
    ping_id = str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event = events_pb2.Event(event_id=f"ping/{ping_id}", chain="ping", ping=events_pb2.Ping(id=ping_id, time=stamp))
    event.occur_time.GetCurrentTime()
    return ping_id, event


async def ping(endpoint: Endpoint) -> pb.PingResult:
    """Sends one signed ping to `endpoint` now and reports the answer."""
    from .worker import body_for, headers_for

    ping_id, event = ping_event()
    body = body_for(endpoint, event)
    headers = headers_for(endpoint, f"msg_ping_{ping_id}", 1, body)
    started = time.perf_counter()
    try:
        reply = await endpoint.transport.post(endpoint.config.url, body, headers)
    except TransportError as exc:
        return pb.PingResult(endpoint=endpoint.name, ok=False, error=str(exc),
                             latency_seconds=time.perf_counter() - started)
    latency = time.perf_counter() - started
    ok = 200 <= reply.status < 300
    error = "" if ok else f"HTTP {reply.status}: {reply.snippet[:200].decode('utf-8', 'replace')}"
    return pb.PingResult(endpoint=endpoint.name, ok=ok, http_status=reply.status, error=error, latency_seconds=latency)


async def ping_all(config: Config) -> list[pb.PingResult]:
    """Pings every configured endpoint with its own transport, signer and timeouts."""
    results = []
    for hook in config.webhooks:
        transport = open_transport(config.dispatcher.transport, Timeouts(hook.connect_timeout, hook.timeout), 1,
                                   hook.ca_file)
        try:
            endpoint = Endpoint(hook.name, hook, EndpointFilter.from_config(hook), Signer(hook.secret), transport)
            results.append(await ping(endpoint))
        finally:
            await transport.close()
    return results
