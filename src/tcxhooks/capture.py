"""`tcxhooks capture -c FILE -o trace.jsonl [--minutes N] [--anonymize]`: record what the monitor receives.

Attaches to the running monitor over gRPC (MonitorService.Capture), so the PBX keeps one session and the
trace is exactly what the monitor worked from; with no monitor running it runs the monitor's PBX side
itself, which needs the monitor stopped or an API client of its own (docs/3cx.md §8). Lines are written
as they arrive; Ctrl-C or SIGTERM stops and keeps what was written. `--anonymize` writes no original
phone number, name or e-mail address.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import grpc

from .platform.config import ConfigError, load_config
from .platform.configfile import add_config_option, find_config
from .platform.grpc import open_channel
from .platform.settings import PlatformSettings, ServicesConfig

if TYPE_CHECKING:
    from tcxhooks.monitor.config import MonitorSettings


async def _from_monitor(channel: grpc.aio.Channel, seconds: float) -> AsyncIterator[str]:
    from tcxhooks.v1 import monitor_service_pb2, monitor_service_pb2_grpc

    stub = monitor_service_pb2_grpc.MonitorServiceStub(channel)
    async for record in stub.Capture(monitor_service_pb2.CaptureRequest(seconds=seconds)):
        yield record.line


async def _directory_names(channel: grpc.aio.Channel) -> list[str]:
    """The extensions' names, so the anonymizer takes them out of free text before it meets them in a field."""
    from tcxhooks.v1 import monitor_service_pb2, monitor_service_pb2_grpc

    try:
        reply = await monitor_service_pb2_grpc.MonitorServiceStub(channel).ListExtensions(
            monitor_service_pb2.ListExtensionsRequest(), timeout=10
        )
    except grpc.aio.AioRpcError:
        return []
    return [e.name for e in reply.extensions if e.name]


async def _monitor_channel(services: ServicesConfig) -> grpc.aio.Channel | None:
    """A channel to the running monitor, or None when none answers."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = open_channel(services, "monitor")
    try:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="liveness"), timeout=2)
        return channel
    except grpc.aio.AioRpcError:
        await channel.close()
        return None


@dataclass
class Written:
    lines: int = 0


async def capture(
    services: ServicesConfig,
    monitor: MonitorSettings,
    out: TextIO,
    seconds: float,
    anonymize: bool,
    say: TextIO,
    written: Written,
) -> None:
    """Writes trace lines to `out` (counting them in `written`) until `seconds` passed or it is cancelled."""
    from tcxhooks.monitor.capture.anonymize import Anonymizer
    from tcxhooks.monitor.capture.recorder import encode

    anonymizer = Anonymizer() if anonymize else None
    channel = await _monitor_channel(services)
    lines: AsyncIterator[str]
    if channel is not None:
        say.write(f"capturing from the running monitor at {services.monitor}\n")
        if anonymizer is not None:
            anonymizer.learn_names(await _directory_names(channel))
        lines = _from_monitor(channel, seconds)
    else:
        from tcxhooks.monitor.capture.standalone import standalone_lines

        say.write(
            f"no monitor answers at {services.monitor}: capturing {monitor.pbx.url} with this "
            f"process's own PBX session (stop the monitor first, or use an API client of its own)\n"
        )
        lines = standalone_lines(monitor, seconds)
    try:
        async for line in lines:
            if anonymizer is not None:
                line = encode(anonymizer.record(json.loads(line)))
            out.write(line + "\n")
            out.flush()
            written.lines += 1
    finally:
        if channel is not None:
            await channel.close()


async def _run(
    services: ServicesConfig, monitor: MonitorSettings, path: str, seconds: float, anonymize: bool, written: Written
) -> bool:
    """Captures into `path`; False when a signal stopped it early."""
    loop = asyncio.get_running_loop()
    with open(path, "w", encoding="utf-8") as out:
        job = asyncio.ensure_future(capture(services, monitor, out, seconds, anonymize, sys.stderr, written))
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, job.cancel)
        try:
            await job
        except asyncio.CancelledError:
            return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="tcxhooks capture",
        description="Record what the monitor receives from the PBX into a trace file (docs/3cx.md §8).",
    )
    add_config_option(parser)
    parser.add_argument("-o", "--output", required=True, help="the trace file to write (JSON lines)")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to record (default 10)")
    parser.add_argument(
        "--anonymize", action="store_true", help="replace phone numbers, names and e-mail addresses consistently"
    )
    args = parser.parse_args(argv)
    if not args.minutes > 0:
        parser.error("--minutes must be more than 0")
    from tcxhooks.monitor.config import MonitorSettings

    try:
        config = load_config(find_config(args.config), (PlatformSettings, MonitorSettings))
    except ConfigError as exc:
        print(f"tcxhooks capture: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    written = Written()
    try:
        finished = asyncio.run(
            _run(
                config[PlatformSettings].services,
                config[MonitorSettings],
                args.output,
                args.minutes * 60,
                args.anonymize,
                written,
            )
        )
    except grpc.aio.AioRpcError as exc:
        print(f"tcxhooks capture: the monitor refused: {exc.details()}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as exc:
        print(f"tcxhooks capture: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"{'' if finished else 'stopped: '}{written.lines} records written to {args.output}", file=sys.stderr)
