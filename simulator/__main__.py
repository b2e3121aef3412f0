"""`tcxhooks sim`: run the 3CX V20 simulator until SIGTERM/SIGINT, optionally playing a scenario on repeat."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from . import audio, scenarios, trace
from .server import SimConfig, SimState, create_app
from .state import DEFAULT_DNS, Dn
from .steps import Script


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tcxhooks sim", description="A 3CX V20 PBX simulator (Call Control + XAPI).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5001, help="port (default 5001, like a self-hosted 3CX)")
    parser.add_argument("--scenario", choices=scenarios.names(), help="play this scenario once at start")
    parser.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="play this trace of `tcxhooks capture` once at start, on the DNs it shows",
    )
    parser.add_argument(
        "--repeat", type=float, metavar="SECONDS", help="with --scenario or --trace: play it again every SECONDS"
    )
    parser.add_argument("--client-id", default="crmhooks", help="API client id (default crmhooks)")
    parser.add_argument("--client-secret", help="API client secret (default: a random one, printed)")
    parser.add_argument("--recordings-dir", type=Path, help="where wav files go (default: a temporary folder)")
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="token lifetime (60, as on V20 builds that issue short tokens)",
    )
    parser.add_argument(
        "--monitor-trunk",
        action="store_true",
        help="the API client also monitors the trunk DN 10000: its participants show up in Call Control",
    )
    parser.add_argument(
        "--recording-delay",
        type=float,
        default=0.3,
        metavar="SECONDS",
        help="time from a leg's end until its recording shows in XAPI (0.3)",
    )
    parser.add_argument("--first-call", type=int, default=698, metavar="N", help="first call number (698)")
    parser.add_argument(
        "--load-extensions", type=int, default=0, metavar="N", help="add N extensions 2000… for load tests (0)"
    )
    args = parser.parse_args(argv)
    if args.repeat is not None and ((args.scenario is None and args.trace is None) or args.repeat <= 0):
        parser.error("--repeat needs --scenario or --trace and a positive number of seconds")
    if args.scenario and args.trace:
        parser.error("--scenario and --trace: choose one")
    if not 0 < args.port < 65536:
        parser.error("--port must be 1..65535")
    if args.token_ttl <= 0 or args.recording_delay < 0 or args.first_call < 1 or not 0 <= args.load_extensions <= 8000:
        parser.error("--token-ttl > 0, --recording-delay ≥ 0, --first-call ≥ 1, --load-extensions 0..8000")
    return args


def _trace(path: Path) -> tuple[Script, tuple[Dn, ...]]:
    try:
        records = trace.records_of(path.read_text(encoding="utf-8").splitlines())
        return trace.script_of(records, path.name), trace.dns_of(records)
    except (OSError, UnicodeDecodeError, trace.TraceError) as exc:
        raise SystemExit(f"tcxhooks sim: cannot play {path}: {exc}") from None


async def serve(args: argparse.Namespace) -> None:
    played, dns = _trace(args.trace) if args.trace else (None, DEFAULT_DNS)
    recordings = args.recordings_dir or Path(tempfile.mkdtemp(prefix="tcxhooks-sim-"))
    recordings.mkdir(parents=True, exist_ok=True)
    secret = args.client_secret or secrets.token_urlsafe(18)
    state = SimState(
        SimConfig(
            client_id=args.client_id,
            client_secret=secret,
            token_ttl=args.token_ttl,
            recordings_dir=recordings,
            recording_delay=args.recording_delay,
            first_call_number=args.first_call,
            extra_extensions=args.load_extensions,
            monitor_trunk=args.monitor_trunk,
            dns=dns,
        )
    )
    threading.Thread(target=audio.clip, name="clip-warm-up", daemon=True).start()
    runner = web.AppRunner(create_app(state), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    print(f"3CX V20 simulator at http://{shown}:{args.port}", flush=True)
    print(f"  client id:     {args.client_id}", flush=True)
    print(f"  client secret: {secret}", flush=True)
    print(f"  recordings:    {recordings}", flush=True)
    print('  scenarios:     POST /sim/play {"scenario": NAME}; list: GET /sim/scenarios', flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            if args.scenario or played:
                row = (
                    state.player.start(played, gap=0.0)
                    if played
                    else state.player.start(scenarios.build(args.scenario))
                )
                print(f"playing {args.scenario or args.trace} as call {row.call_number}", flush=True)
            if args.repeat is None:
                await stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.repeat)
    finally:
        await runner.cleanup()


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed, as the services run: a stand-in PBX should not be the slow end of a latency
    measured through it (bench/latency.py)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            runner.run(serve(args))
    except OSError as exc:
        print(f"tcxhooks sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
