"""DispatcherService: translates between the gRPC messages and the outbox, endpoints and worker.

Its errors carry their status codes (errors.py): a refused event or request is INVALID_ARGUMENT
(nothing stored), an unknown endpoint NOT_FOUND; a store out of reach is UNAVAILABLE (the producer
retries) and anything unexpected INTERNAL (platform/errors.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.platform.limits import MIB
from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tcxhooks.v1 import dispatcher_service_pb2_grpc, events_pb2

from .endpoints import Endpoint, Endpoints
from .errors import InvalidEvent, InvalidRequest, StaleFence
from .intake import Intake
from .ledger import Ledger
from .metrics import PUBLISHED
from .payloads import attributes, call_id_of, event_names, validate
from .ping import ping
from .records import AttemptRecord, DeliveryRow, NewEvent, Published
from .worker import Worker

log = logging.getLogger(__name__)
MAX_LIST = 10_000
MAX_BATCH = 1000
# The RPCs taking more than the platform's 256 KiB per request (platform/limits.py): an analytics event
# carries a call's whole transcript twice (text and segments; ~1 MB for four hours of speech), a
# batch up to MAX_BATCH call events.
REQUEST_LIMITS = {"Publish": 4 * MIB, "PublishStream": 4 * MIB, "PublishBatch": 8 * MIB}
STREAM_WINDOW = 1024


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _attempt(record: AttemptRecord) -> pb.Attempt:
    return pb.Attempt(
        number=record.number,
        time=_timestamp(record.at),
        http_status=record.http_status,
        latency_seconds=record.latency,
        response_snippet=record.response,
        error=record.error,
    )


def _delivery(row: DeliveryRow) -> pb.Delivery:
    return pb.Delivery(
        id=str(row.id),
        event_id=row.event_id,
        endpoint=row.endpoint,
        chain=row.chain,
        sequence=row.sequence,
        event_type=row.event_type,
        call_id=row.call_id,
        status=cast(pb.DeliveryStatus, row.status),
        attempts=row.attempts,
        created_time=_timestamp(row.created_at),
        next_attempt_time=_timestamp(row.next_attempt_at),
        attempt_log=[_attempt(a) for a in row.attempt_log],
        webhook_id=row.message_id,
        endpoint_sequence=row.endpoint_sequence,
    )


def _fresh(result: Published, fence: pb.Fence | None) -> Published:
    """The result, unless its fence was stale: then the whole call is refused (ABORTED)."""
    if result.stale:
        shown = f" {fence.lease} #{fence.number}" if fence is not None else ""
        PUBLISHED.labels("stale").inc()
        raise StaleFence(f"stale fence{shown}: a newer holder of the lease has published; this one must stop")
    return result


def _response(result: Published) -> pb.PublishResponse:
    return pb.PublishResponse(sequence=result.sequence, duplicate=result.duplicate, deliveries=result.deliveries)


_WEBHOOK_ID = re.compile(r"msg_[0-9a-f]{32}")


def _chosen(texts: Sequence[str]) -> tuple[list[int], list[str]]:
    """Delivery numbers and webhook-ids (`msg_<32 hex>`; `msg_<number>` is a delivery's own)."""
    ids: list[int] = []
    webhook_ids: list[str] = []
    for text in texts:
        value = text.strip()
        if _WEBHOOK_ID.fullmatch(value):
            webhook_ids.append(value)
        elif value.removeprefix("msg_").isdigit():
            ids.append(int(value.removeprefix("msg_")))
        else:
            raise InvalidRequest(
                f"{text!r} is neither a delivery number (as `tcxhooks deliveries` lists them) nor a webhook-id"
            )
    return ids, webhook_ids


class DispatcherServicer(dispatcher_service_pb2_grpc.DispatcherServiceServicer):
    def __init__(self, ledger: Ledger, endpoints: Endpoints, intake: Intake, worker: Worker) -> None:
        self.ledger = ledger
        self.endpoints = endpoints
        self.intake = intake
        self.worker = worker

    def _prepare(self, event: events_pb2.Event, fence: pb.Fence) -> NewEvent:
        try:
            validate(event)
        except InvalidEvent as exc:
            PUBLISHED.labels("rejected").inc()
            log.warning("rejected event %r: %s", event.event_id[:80], exc)
            raise
        if not event.HasField("occur_time"):
            event.occur_time.FromNanoseconds(time.time_ns())
        form_name, json_type = event_names(event)
        return NewEvent(
            event,
            form_name,
            json_type,
            call_id_of(event),
            attributes(event),
            (fence.lease, fence.number) if fence.lease else None,
        )

    async def Publish(
        self, request: pb.PublishRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.PublishResponse:
        result = await self.intake.submit(self._prepare(request.event, request.fence))
        return _response(_fresh(result, request.fence))

    async def PublishStream(
        self, requests: AsyncIterator[pb.PublishRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        # Reading runs ahead of the commits (group commit needs many events in flight), at most
        # STREAM_WINDOW unacknowledged; answers go out in request order.
        queue: asyncio.Queue[asyncio.Future[Published] | None] = asyncio.Queue(STREAM_WINDOW)

        async def read() -> None:
            try:
                async for request in requests:
                    await queue.put(self.intake.submit(self._prepare(request.event, request.fence)))
            finally:
                await queue.put(None)

        reader = asyncio.ensure_future(read())
        try:
            while (pending := await queue.get()) is not None:
                result = await pending
                await context.write(_response(_fresh(result, None)))
            await reader
        finally:
            reader.cancel()

    async def PublishBatch(
        self, request: pb.PublishBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.PublishBatchResponse:
        if len(request.events) > MAX_BATCH:
            raise InvalidRequest(f"{len(request.events)} events in one batch; at most {MAX_BATCH}")
        submitted: list[asyncio.Future[Published] | str] = []
        for event in request.events:
            try:
                submitted.append(self.intake.submit(self._prepare(event, request.fence)))
            except InvalidEvent as exc:
                submitted.append(str(exc))
        outcomes = []
        for item in submitted:
            if isinstance(item, str):
                outcomes.append(pb.PublishOutcome(refused=item))
                continue
            result = _fresh(await item, request.fence)
            outcomes.append(pb.PublishOutcome(stored=_response(result)))
        return pb.PublishBatchResponse(outcomes=outcomes)

    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListDeliveriesResponse:
        if request.limit < 0:
            raise InvalidRequest("limit must not be negative")
        if request.status not in pb.DeliveryStatus.values():
            raise InvalidRequest(f"unknown status {request.status}")
        if request.endpoint:
            self.endpoints.get(request.endpoint)
        rows = await self.ledger.list_deliveries(
            request.status,
            request.call_id,
            request.endpoint,
            min(request.limit or 100, MAX_LIST),
            request.with_attempts,
        )
        return pb.ListDeliveriesResponse(deliveries=[_delivery(r) for r in rows])

    async def Redeliver(
        self, request: pb.RedeliverRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RedeliverResponse:
        ids, webhook_ids = _chosen(request.delivery_ids)
        try:
            since = request.since_time.ToNanoseconds() / 1e9 if request.HasField("since_time") else None
        except ValueError as exc:  # seconds or nanos beyond what a Timestamp may hold
            raise InvalidRequest(f"since_time is not a valid time ({exc})") from None
        if not request.delivery_ids and since is None and not request.dead:
            raise InvalidRequest("name delivery ids, a since_time or dead")
        count = await self.ledger.redeliver(ids, since, request.dead, webhook_ids)
        log.info("redelivery of %d deliveries requested", count)
        self.worker.wake()
        return pb.RedeliverResponse(count=count)

    def _endpoint(self, endpoint: Endpoint, stats: dict[str, tuple[int, float]]) -> pb.Endpoint:
        pending, oldest = stats.get(endpoint.name, (0, 0.0))
        return pb.Endpoint(
            name=endpoint.name,
            url=endpoint.sink.target,
            format=endpoint.sink.kind,
            state=cast(pb.EndpointState, endpoint.state),
            pending=pending,
            oldest_pending_age_seconds=max(0.0, time.time() - oldest) if pending else 0.0,
            consecutive_failures=endpoint.failures,
            last_error=endpoint.last_error,
        )

    async def ListEndpoints(
        self, request: pb.ListEndpointsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListEndpointsResponse:
        await self.endpoints.load()
        stats = await self.ledger.pending_stats()
        return pb.ListEndpointsResponse(endpoints=[self._endpoint(e, stats) for e in self.endpoints])

    async def SetEndpointState(
        self, request: pb.SetEndpointStateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SetEndpointStateResponse:
        if not request.name:
            raise InvalidRequest("name the endpoint")
        endpoint = await self.endpoints.set_state(request.name, request.enabled)
        self.worker.wake()
        stats = await self.ledger.pending_stats()
        return pb.SetEndpointStateResponse(endpoint=self._endpoint(endpoint, stats))

    async def PingEndpoint(
        self, request: pb.PingEndpointRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.PingEndpointResponse:
        chosen = [self.endpoints.get(request.name)] if request.name else list(self.endpoints)
        return pb.PingEndpointResponse(results=[await ping(endpoint) for endpoint in chosen])


def register(servicer: DispatcherServicer, server: Any) -> None:
    dispatcher_service_pb2_grpc.add_DispatcherServiceServicer_to_server(servicer, server)
