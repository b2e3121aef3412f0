"""`tcxhooks fakecrm NAME`: run one fake CRM until SIGTERM/SIGINT, for trying an adapter by hand or a demo.

    tcxhooks fakecrm bitrix24 --port 5080

Each fake is a module `tcxhooks.simulator.crm.<name>` with `add_arguments(parser)` and
`build(args) -> (aiohttp app, lines describing it)`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
from importlib.util import find_spec
from types import ModuleType

from aiohttp import web

KNOWN = ("bitrix24", "amocrm", "zammad")


def _fakes() -> dict[str, ModuleType]:
    return {
        name: importlib.import_module(f"{__package__}.{name}")
        for name in KNOWN
        if find_spec(f"{__package__}.{name}") is not None
    }


def parse_args(argv: list[str] | None, fakes: dict[str, ModuleType]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tcxhooks fakecrm", description="A fake CRM built from its public API docs.")
    sub = parser.add_subparsers(dest="crm", required=True, metavar="NAME")
    for name, module in fakes.items():
        one = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        one.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        one.add_argument("--port", type=int, default=5080, help="port (default 5080)")
        module.add_arguments(one)
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error("--port must be 1..65535")
    return args


async def serve(app: web.Application, lines: list[str], host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    for line in lines:
        print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    fakes = _fakes()
    args = parse_args(argv, fakes)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    app, lines = fakes[args.crm].build(args, f"http://{shown}:{args.port}")
    try:
        asyncio.run(serve(app, lines, args.host, args.port))
    except OSError as exc:
        print(f"tcxhooks fakecrm: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
