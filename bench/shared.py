"""What the benches share: the client the simulator lets in, a webhook receiver in its own process,
and the CPU time of a process or of the local PostgreSQL server. Imported by the bench scripts (their
folder is on sys.path when run)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

CLIENT_ID, CLIENT_SECRET = "crmhooks", "bench-secret"


def _stat(pid: int | str) -> tuple[str, list[str]] | None:
    """A process's name and the fields of /proc/PID/stat after it; None when it is gone or /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except OSError:
        return None
    head, _, rest = text.rpartition(")")
    return head.partition("(")[2], rest.split()


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far; NaN where /proc is missing."""
    stat = _stat(pid)
    if stat is None:
        return float("nan")
    fields = stat[1]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU seconds the PostgreSQL server on this machine has used so far: its processes, and the ones that
    exited (the postmaster collected their time). NaN when none runs here."""
    server = [stat[1] for pid in _pids() if (stat := _stat(pid)) is not None and stat[0] == "postgres"]
    ticks = sum(int(value) for fields in server for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK") if server else float("nan")


def _pids() -> list[str]:
    try:
        return [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


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
