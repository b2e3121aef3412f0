"""What the benches share: the client the simulator lets in, a webhook receiver in its own process,
and a process's CPU time. Imported by the bench scripts (their folder is on sys.path when run)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

CLIENT_ID, CLIENT_SECRET = "crmhooks", "bench-secret"


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far; NaN where /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_receiver(
    port: int,
    conn: Any,
    handle: Callable[[Any], Awaitable[Any]],
    seen: list[Any],
    command: Callable[[str], bool] = lambda _: False,
) -> None:
    """A receiver process's body: POST /hook answered by `handle`, driven over the pipe `conn`:
    `count` (how many `seen`), `take` (them, and forget them), `stop`; any other command goes to
    `command`, which answers "ok" on the pipe when it knew it."""
    from aiohttp import web

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        conn.send("ready")
        loop = asyncio.get_running_loop()
        while True:
            asked = await loop.run_in_executor(None, conn.recv)
            if asked == "count":
                conn.send(len(seen))
            elif asked == "take":
                conn.send(list(seen))
                seen.clear()
            elif asked == "stop":
                break
            elif command(asked):
                conn.send("ok")
        await runner.cleanup()

    asyncio.run(main())
