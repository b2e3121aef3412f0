"""What a recognition backend is to the job runner (the configured one is chosen in server.py).

A backend advances a job one step at a time: `step()` returns `Wait(seconds)` when it has to
come back later (a Yandex operation still running) or an `Outcome` when the transcript and the
summary exist; it raises `AnalyticsError` otherwise. Whatever must survive a restart goes into
`job.progress` and is persisted with `await save()` before the step goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from .errors import no_backend
from .jobstore import Job
from .transcript import Segment

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
