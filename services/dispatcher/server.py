"""Wiring of the dispatcher: outbox on the shared store, endpoints and their sinks (webhooks and CRM
adapters), the CRM listener, worker, housekeeping, gRPC."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from tcxhooks.platform.runtime import App
from tcxhooks.v1 import dispatcher_service_pb2 as pb

from .config import CrmConfig, DispatcherSettings, WebhookConfig
from .crm import CrmEndpoint, CrmSink, LegStore, SinkDeps
from .crm.listener import Listener
from .crm.placing import monitor_place_call
from .crm.registry import build_sink, retry_schedule
from .endpoints import Endpoint, Endpoints
from .filters import EndpointFilter
from .housekeeping import housekeeping
from .intake import Intake
from .ledger import Ledger
from .outbox import Outbox
from .ping import ping
from .retry import RetryPolicy
from .servicer import DispatcherServicer, register
from .transport import Timeouts, Transport
from .webhook import WebhookSink
from .worker import Worker

log = logging.getLogger(__name__)


def webhook_endpoint(hook: WebhookConfig, zone: dt.tzinfo | None) -> Endpoint:
    """A `[webhook:NAME]` section as an endpoint: its filter and a sink posting to its URL (times in `zone`)."""
    transport = Transport(Timeouts(hook.connect_timeout, hook.timeout), hook.concurrency, hook.ca_file)
    return Endpoint(
        hook.name,
        EndpointFilter.from_config(hook),
        WebhookSink(hook, transport, zone),
        hook.concurrency,
        hook.max_backlog,
    )


def configured_endpoints(settings: DispatcherSettings) -> list[Endpoint]:
    zone = settings.pbx.zone
    return [webhook_endpoint(hook, zone) for hook in settings.webhooks]


async def ping_all(settings: DispatcherSettings) -> list[pb.PingResult]:
    """Pings every configured endpoint, each with its own sink (`tcxhooks check` without a dispatcher)."""
    results = []
    for endpoint in configured_endpoints(settings):
        try:
            results.append(await ping(endpoint))
        finally:
            await endpoint.sink.close()
    return results


def crm_endpoint(crm: CrmConfig, sink: CrmSink) -> Endpoint:
    """A `[crm:NAME]` section as an endpoint: its filter and its adapter behind the sink seam."""
    schedule = retry_schedule(crm)
    return Endpoint(
        crm.name,
        EndpointFilter.from_config(crm),
        CrmEndpoint(sink, crm.type),
        crm.concurrency,
        crm.max_backlog,
        RetryPolicy(schedule) if schedule else None,
    )


async def build(app: App[DispatcherSettings]) -> None:
    settings = app.settings.dispatcher
    store = await app.open_store()
    outbox = Outbox(store, owner=f"dispatcher-{uuid.uuid4()}")
    ledger = Ledger(store)
    await outbox.migrate()
    legs = LegStore(store)
    await legs.migrate()
    clicks = any(crm.click_to_call for crm in app.settings.crms)
    deps = SinkDeps(
        legs, settings.public_url, monitor_place_call(app.channel("monitor")) if clicks else None, settings.keep_days
    )
    crms = [(crm, build_sink(crm, deps)) for crm in app.settings.crms]
    if store.dialect == "sqlite":
        # One dispatcher per SQLite file: leases left by a killed process are void right away.
        released = await outbox.release_all()
        if released:
            log.info("released %d deliveries claimed by the previous run", released)
    endpoints = Endpoints(ledger, configured_endpoints(app.settings) + [crm_endpoint(c, sink) for c, sink in crms])
    app.stack.push_async_callback(endpoints.close)
    await endpoints.load()
    if settings.listen:
        listener = Listener([sink for _, sink in crms], settings.listen, settings.tls_cert, settings.tls_key)
        await listener.start()
        app.stack.push_async_callback(listener.close)
    for crm, sink in crms:
        app.spawn(sink.run(app.stopping), f"crm.{crm.name}")
    worker = Worker(outbox, endpoints, RetryPolicy(settings.retry_schedule), settings.lease_ttl, settings.batch)
    intake = Intake(outbox, endpoints, worker)
    register(DispatcherServicer(ledger, endpoints, intake, worker), app.server)
    app.spawn(worker.run(app.stopping), "worker")
    app.spawn(
        housekeeping(
            outbox,
            ledger,
            endpoints,
            settings.keep_days,
            settings.keep_dead_days,
            settings.lease_ttl,
            app.stopping,
            worker.wake,
        ),
        "housekeeping",
    )
