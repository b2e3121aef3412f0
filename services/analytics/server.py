"""Wiring of the analytics service: store, backend, job runner, publisher, gRPC servicer."""
from __future__ import annotations

import socket

import httpx

from tcxhooks.platform.runtime import App
from tcxhooks.v1 import analytics_service_pb2_grpc

from .backend import Unavailable, make_backend
from .jobs import Runner
from .jobstore import JobStore
from .publisher import Publisher
from .servicer import AnalyticsServicer


async def build(app: App) -> None:
    config = app.config.analytics
    store = await app.open_store()
    jobs = JobStore(store, owner=f"{socket.gethostname()}/{app.config.services.analytics}")
    await jobs.migrate()
    client = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=10.0))
    app.stack.push_async_callback(client.aclose)
    backend = make_backend(config, client)
    if config.enabled and isinstance(backend, Unavailable):
        app.health.add_check("backend", backend.probe, critical=False)
    publisher = Publisher(jobs, app.channel("dispatcher"))
    runner = Runner(config, jobs, backend, publisher.wake, retention=app.config.recordings.retention_days * 86400.0)
    servicer = AnalyticsServicer(config, jobs, backend.name, runner.wake)
    analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server(servicer, app.server)
    app.spawn(runner.run(app.stopping), "jobs")
    warm_up = getattr(backend, "warm_up", None)
    if config.enabled and warm_up is not None:
        app.spawn(warm_up(), "warm-up")
    app.spawn(publisher.run(app.stopping), "publisher")
