"""What a recognition backend is to the job runner, and how the configured one is chosen.

A backend advances a job one step at a time: `step()` returns `Wait(seconds)` when it has to
come back later (a Yandex operation still running) or an `Outcome` when the transcript and the
summary exist; it raises `AnalyticsError` otherwise. Whatever must survive a restart goes into
`job.progress` and is persisted with `await save()` before the step goes on.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

import httpx

from tcxhooks.platform.config import AnalyticsConfig

from .errors import no_backend
from .jobstore import Job
from .transcript import Segment

log = logging.getLogger(__name__)

Save = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Outcome:
    segments: list[Segment]
    summary: str
    language: str


class Backend(Protocol):
    name: str

    async def step(self, job: Job, save: Save) -> Wait | Outcome: ...


class Unavailable:
    """Stands in for a backend that cannot run here; every job fails with the reason."""

    def __init__(self, name: str, detail: str) -> None:
        self.name = name
        self.detail = detail

    async def step(self, job: Job, save: Save) -> Wait | Outcome:
        raise no_backend(self.detail)

    async def probe(self) -> None:
        """A (non-critical) health check that stays down: `tcxhooks_dependency_up{dependency="backend"} 0`."""
        raise RuntimeError(f"no backend configured: {self.detail}")


def make_backend(config: AnalyticsConfig, client: httpx.AsyncClient) -> Backend:
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

            backend = YandexBackend(config, client)
    else:
        try:
            from .offline import OfflineBackend
        except ImportError as exc:
            backend = Unavailable("offline", "backend = offline needs the offline extra "
                                  f"(pip install 'tcxhooks[offline]'): {exc}")
        else:
            backend = OfflineBackend(config, client)
    if isinstance(backend, Unavailable) and config.enabled:
        log.warning("analytics: %s", backend.detail)
    return backend
