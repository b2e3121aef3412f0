"""Wiring of the analytics service: store, backend, job runner, publisher, gRPC servicer.

The backend is chosen here, from the configuration: the backends import what a backend is
(backend.py), never the other way round.
"""

from __future__ import annotations

import logging

import httpx

from tcxhooks.platform.jobqueue import process_owner, replica_name
from tcxhooks.platform.runtime import App
from tcxhooks.v1 import analytics_service_pb2_grpc

from .audio import MediaAudio
from .backend import Backend, Unavailable
from .config import AnalyticsConfig, AnalyticsSettings
from .jobs import Runner
from .jobstore import JobStore
from .publisher import Publisher
from .servicer import AnalyticsServicer

log = logging.getLogger(__name__)


def make_backend(config: AnalyticsConfig, client: httpx.AsyncClient, audio: MediaAudio) -> Backend:
    """The configured backend, or `Unavailable` with what is missing (logged once here)."""
    backend: Backend
    if config.backend == "yandex":
        missing = []
        if not (config.api_key or config.iam_token or config.iam_token_file):
            missing.append("api_key (or iam_token, or iam_token_file)")
        if not config.folder_id:
            missing.append("folder_id")
        if missing:
            backend = Unavailable("yandex", f"backend = yandex needs [analytics] {' and '.join(missing)}")
        else:
            from .yandex.backend import YandexBackend

            backend = YandexBackend(config, client, audio)
    else:
        try:
            from .offline import OfflineBackend
        except ImportError as exc:
            backend = Unavailable(
                "offline", f"backend = offline needs the offline extra (pip install 'tcxhooks[offline]'): {exc}"
            )
        else:
            backend = OfflineBackend(config, audio)
    if isinstance(backend, Unavailable) and config.enabled:
        log.warning("analytics: %s", backend.detail)
    return backend


async def build(app: App[AnalyticsSettings]) -> None:
    config = app.settings.analytics
    store = await app.open_store()
    jobs = JobStore(store, process_owner(replica_name(app.platform.services.analytics)))
    await jobs.migrate()
    client = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=10.0))
    app.stack.push_async_callback(client.aclose)
    backend = make_backend(config, client, MediaAudio(app.channel("media")))
    if config.enabled and isinstance(backend, Unavailable):
        app.health.add_check("backend", backend.probe, critical=False)
    publisher = Publisher(jobs, app.channel("dispatcher"))
    runner = Runner(config, jobs, backend, publisher.wake, retention=app.settings.recordings.retention_days * 86400.0)
    servicer = AnalyticsServicer(config, jobs, backend.name, runner.wake)
    analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server(servicer, app.server)
    app.spawn(runner.run(app.stopping), "jobs")
    warm_up = getattr(backend, "warm_up", None)
    if config.enabled and warm_up is not None:
        app.spawn(warm_up(), "warm-up")
    app.spawn(publisher.run(app.stopping), "publisher")
