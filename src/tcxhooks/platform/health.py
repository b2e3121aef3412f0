"""gRPC health (grpc.health.v1) driven by named dependency checks.

    app.health.add_check("store", store.ping, critical=True)

Service "" and the service's full gRPC name are SERVING while every critical check passes
(readiness). Service "liveness" stays SERVING while the event loop runs (never depends on peers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .metrics import DEPENDENCY_UP

log = logging.getLogger(__name__)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
LIVENESS = "liveness"


@dataclass
class _Check:
    name: str
    probe: Callable[[], Awaitable[object]]
    critical: bool
    ok: bool = False
    error: str = ""


class Health:
    def __init__(self, service: str, grpc_names: tuple[str, ...], interval: float = 5.0, timeout: float = 3.0) -> None:
        self.service = service
        self.servicer = health.aio.HealthServicer()
        self.grpc_names = ("", *grpc_names)
        self.interval = interval
        self.timeout = timeout
        self.checks: list[_Check] = []
        self._shutting_down = False

    def add_to_server(self, server: grpc.aio.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    def add_check(self, name: str, probe: Callable[[], Awaitable[object]], critical: bool = True) -> None:
        self.checks.append(_Check(name, probe, critical))

    async def run_checks(self) -> bool:
        for check in self.checks:
            try:
                await asyncio.wait_for(check.probe(), self.timeout)
                if not check.ok:
                    log.info("dependency %s is up", check.name)
                check.ok, check.error = True, ""
            except Exception as exc:  # any failure of a probe means "down"
                if check.ok or not check.error:
                    log.warning("dependency %s is down: %s", check.name, exc or type(exc).__name__)
                check.ok, check.error = False, str(exc) or type(exc).__name__
            DEPENDENCY_UP.labels(self.service, check.name).set(1 if check.ok else 0)
        ready = all(c.ok for c in self.checks if c.critical)
        await self._publish(ready)
        return ready

    async def _publish(self, ready: bool) -> None:
        if self._shutting_down:
            return
        for name in self.grpc_names:
            await self.servicer.set(name, SERVING if ready else NOT_SERVING)
        await self.servicer.set(LIVENESS, SERVING)

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.run_checks()

    async def shutdown(self) -> None:
        self._shutting_down = True
        await self.servicer.enter_graceful_shutdown()

    def report(self) -> list[tuple[str, bool, str]]:
        return [(c.name, c.ok, c.error) for c in self.checks]
