"""The life of every service: config → logging → metrics → gRPC server → build() → serve → drain.

    async def build(app: App[DispatcherSettings]) -> None:
        store = await app.open_store()
        servicer = DispatcherServicer(app.settings.webhooks, ...)
        dispatcher_service_pb2_grpc.add_DispatcherServiceServicer_to_server(servicer, app.server)
        app.spawn(worker.run(), "worker")

    def main() -> None:
        runtime.run("dispatcher", DispatcherSettings, build, grpc_service="tcxhooks.v1.DispatcherService")

Each process loads the platform's settings ([store] [services] [metrics] [log]) and its own service's
settings class; `App.settings` holds the latter, `App.platform` the former.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import grpc

from .config import Config, ConfigError, Settings, load_config
from .configfile import add_config_option, find_config
from .grpc import create_health_server, create_server, is_loopback, open_channel, open_without_token
from .health import Health
from .limits import RequestLimits
from .logging import setup_logging
from .metrics import start_metrics
from .settings import PlatformSettings
from .store import Store, StoreError, open_store

log = logging.getLogger(__name__)

S = TypeVar("S", bound=Settings)


@dataclass
class App(Generic[S]):
    """What build() wires into; every resource it opens goes on `stack` (closed in reverse)."""

    name: str
    config: Config
    settings: S
    platform: PlatformSettings
    server: grpc.aio.Server
    health: Health
    stack: contextlib.AsyncExitStack
    grpc_port: int
    metrics_port: int
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _store: Store | None = None
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    crashed: str = ""  # the background task whose crash stopped the service

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Runs a background loop; a crash is logged and stops the service, which then exits 1 (so that a
        supervisor sees a failure and restarts it)."""
        task = asyncio.create_task(coro, name=f"{self.name}.{name}")

        def done(t: asyncio.Task[Any]) -> None:
            if not t.cancelled() and t.exception() is not None and not self.stopping.is_set():
                log.error("background task %s crashed", name, exc_info=t.exception())
                self.crashed = name
                self.stopping.set()

        task.add_done_callback(done)
        self.tasks.append(task)
        return task

    async def open_store(self) -> Store:
        """The shared store (opened once per process, closed at shutdown)."""
        if self._store is None:
            self._store = await open_store(self.platform.store.url)
            self.stack.push_async_callback(self._store.close)
            self.health.add_check("store", self._store.ping, critical=True)
        return self._store

    def channel(self, service: str) -> grpc.aio.Channel:
        """A shared channel to a peer service (closed at shutdown)."""
        if service not in self._channels:
            channel = open_channel(self.platform.services, service)
            self._channels[service] = channel
            self.stack.push_async_callback(channel.close)
        return self._channels[service]


Build = Callable[[App[S]], Awaitable[None]]


def parse_args(name: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"tcxhooks {name}", description=f"Run the tcxhooks {name} service.")
    add_config_option(parser)
    return parser.parse_args(argv)


def load_or_exit(path: str | None, settings: Sequence[type[Settings]]) -> Config:
    """The config with the platform's settings and `settings`; a bad one is printed and exits 2."""
    try:
        return load_config(path, (PlatformSettings, *settings))
    except ConfigError as exc:
        print(f"tcxhooks: bad configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (Linux, macOS): the same asyncio API with a libuv core. The dispatcher
    delivers ~15 % more webhooks per second with it (bench/dispatch.py)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def refuse_open_services(config: Config) -> None:
    """Exits 2 with one line when the services would answer anyone who reaches them (no token while an
    address is beyond loopback)."""
    problem = open_without_token(config[PlatformSettings].services)
    if problem:
        print(f"tcxhooks: bad configuration: {config.path}: {problem}", file=sys.stderr)
        raise SystemExit(2)


def run(
    name: str,
    settings: type[S],
    build: Build[S],
    argv: list[str] | None = None,
    *,
    grpc_service: str,
    request_limits: Mapping[str, int] | None = None,
) -> None:
    """Entry point of one service process; exits 0 after a clean shutdown, 1 when it could not start or a
    background task crashed (after shutting down cleanly), 2 on bad config.

    `name` is the service's key in [services]; `grpc_service` the full name its health answers for;
    `request_limits` the RPCs (by method name) that take larger requests than limits.DEFAULT_REQUEST."""
    args = parse_args(name, argv)
    config = load_or_exit(find_config(args.config), (settings,))
    refuse_open_services(config)
    log_settings = config[PlatformSettings].log
    setup_logging(log_settings.level, log_settings.format, config.secrets(), name)
    limits = RequestLimits(request_limits, name)
    try:
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            crashed = runner.run(serve(name, config, settings, build, grpc_service, limits=limits))
    except (StoreError, OSError) as exc:
        log.error("%s cannot start: %s", name, exc)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        return
    if crashed:
        raise SystemExit(1)


def metrics_host(platform: PlatformSettings, service: str) -> str:
    """Where /metrics listens: `[metrics] host`, else on loopback alone when the service's gRPC address is
    loopback (`tcxhooks up` on one host) and on every interface when it is not (containers)."""
    if platform.metrics.host:
        return platform.metrics.host
    return "127.0.0.1" if is_loopback(platform.services.address(service)) else "0.0.0.0"


def _freeze_startup_heap() -> None:
    """Puts what startup built (modules, config, clients, ~35,000 objects in the dispatcher) beyond the
    garbage collector: a full collection then scans only what came later. Without this, each one
    held every request up for 10-20 ms (the dispatcher in bench/dispatch.py); with it none took 2 ms."""
    gc.collect()
    gc.freeze()
    log.info("%d startup objects kept out of garbage collection", gc.get_freeze_count())


async def serve(
    name: str,
    config: Config,
    settings: type[S],
    build: Build[S],
    grpc_service: str,
    ready: asyncio.Event | None = None,
    limits: RequestLimits | None = None,
) -> str:
    """Runs the service until SIGTERM/SIGINT or a background task's crash; returns that task's name ("" for a
    signal)."""
    log.info("%s starting; config %s", name, config.path, extra={"config": config.redacted()})
    platform = config[PlatformSettings]
    metrics_port = start_metrics(name, platform.metrics.port, metrics_host(platform, name))
    address = platform.services.address(name)
    server, port = create_server(platform.services, address, service=name, limits=limits)
    health = Health(name, (grpc_service,))
    health.add_to_server(server)
    servers = [server]
    if platform.services.health_port:
        health_server, _ = create_health_server(f"{address.rpartition(':')[0]}:{platform.services.health_port}")
        health.add_to_server(health_server)
        servers.append(health_server)
    async with contextlib.AsyncExitStack() as stack:
        app = App(name, config, config[settings], platform, server, health, stack, port, metrics_port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, app.stopping.set)
        for risk in app.settings.risks():
            log.warning("%s", risk)
        await build(app)
        _freeze_startup_heap()
        for each in servers:
            await each.start()
        await health.run_checks()
        health_task = asyncio.create_task(health.loop(), name=f"{name}.health")
        log.info(
            "%s serving gRPC on %s (port %d), metrics on :%d (%s event loop)",
            name,
            address,
            port,
            metrics_port,
            type(loop).__module__.partition(".")[0],
        )
        if ready is not None:
            ready.set()
        await app.stopping.wait()
        log.info("%s stopping", name)
        await health.shutdown()
        await asyncio.gather(*(each.stop(platform.services.grace) for each in servers))
        health_task.cancel()
        # Background loops get `grace` seconds to finish their in-flight work (they watch
        # app.stopping), then are cancelled; unfinished work stays in the store for next time.
        if app.tasks:
            _, pending = await asyncio.wait(app.tasks, timeout=platform.services.grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    # A second SIGTERM (a supervisor and a process-group kill both sending one) must not turn a
    # clean exit into death by signal while the interpreter winds down.
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
    log.info("%s stopped%s", name, f" (background task {app.crashed} crashed)" if app.crashed else "")
    return app.crashed
