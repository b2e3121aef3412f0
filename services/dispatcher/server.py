"""Wiring of the dispatcher: outbox on the shared store, endpoints, worker, housekeeping, gRPC."""
from __future__ import annotations

import logging
import uuid

from tcxhooks.platform.runtime import App

from .endpoints import Endpoints
from .housekeeping import housekeeping
from .intake import Intake
from .outbox import Outbox
from .retry import RetryPolicy
from .servicer import DispatcherServicer, register
from .worker import Worker

log = logging.getLogger(__name__)


async def build(app: App) -> None:
    settings = app.config.dispatcher
    store = await app.open_store()
    outbox = Outbox(store, owner=f"dispatcher-{uuid.uuid4()}")
    await outbox.migrate()
    if store.dialect == "sqlite":
        # One dispatcher per SQLite file: leases left by a killed process are void right away.
        released = await outbox.release_all()
        if released:
            log.info("released %d deliveries claimed by the previous run", released)
    endpoints = Endpoints.from_config(app.config, outbox)
    app.stack.push_async_callback(endpoints.close)
    await endpoints.load()
    worker = Worker(outbox, endpoints, RetryPolicy(settings.retry_schedule), settings.lease_ttl, settings.batch)
    intake = Intake(outbox, endpoints.route, worker, track=endpoints.filter_attributes)
    register(DispatcherServicer(outbox, endpoints, intake, worker), app.server)
    app.spawn(worker.run(app.stopping), "worker")
    app.spawn(housekeeping(outbox, endpoints, settings.keep_days, settings.lease_ttl, app.stopping, worker.wake),
              "housekeeping")
