"""The PBX probes of `tcxhooks check` (src/tcxhooks/check.py): the API client's rights, and the endpoints'
queue and user filters against the PBX directory. A running monitor is asked rather than reached past."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from .check_deps import Verdict, running
from .product import Product

DIRECTORY_WAIT = 15  # seconds to wait for a running monitor's first directory poll


def _monitor_verdict(config: Product, item: Any, fix: str) -> Verdict:
    """One item the running monitor reported; the post-call check's disagreements are a warning whose fix is
    the capture command (docs/3cx.md §4.7, §8)."""
    detail = item.detail + " (asked the running monitor)"
    disagreed = item.counts.get("disagree", 0)
    if item.name != "reconcile" or not item.ok or not disagreed:
        return Verdict(f"pbx {item.name}", item.ok, detail, fix)
    where = f"-c {config.path} " if os.path.isfile(config.path) else ""
    return Verdict(
        f"pbx {item.name}",
        True,
        detail,
        warning=True,
        fix=(
            f"the PBX saw {disagreed} call(s) otherwise than the webhooks said: record what the monitor receives and "
            f"send it to the developers (docs/3cx.md §8): tcxhooks capture {where}-o trace.jsonl --minutes 30 "
            f"--anonymize"
        ),
    )


async def check_pbx(config: Product) -> list[Verdict]:
    from tcxhooks.v1 import monitor_service_pb2, monitor_service_pb2_grpc

    fixes = {
        "token": "check [pbx] url, client_id and client_secret (3CX console: Integrations → API)",
        "callcontrol": "enable '3CX Call Control API Access' for the client and add every DN to monitor",
        "xapi": "enable '3CX Configuration API Access' with the System Owner role (needed for recordings)",
        "recordings": "give the API client the System Owner role (XAPI Recordings answers 403 otherwise)",
        "websocket": "see the monitor's log; it reconnects with backoff",
        "calllog": "give the API client the System Owner role (the call log answers 403 otherwise), or set "
        "[pbx] reconcile = false and recover_outages = false",
        "reconcile": "give the API client the System Owner role, or set [pbx] reconcile = false",
    }
    channel = await running(config, "monitor")
    if channel is not None:
        try:
            reply = await monitor_service_pb2_grpc.MonitorServiceStub(channel).CheckPbx(
                monitor_service_pb2.CheckPbxRequest(), timeout=30
            )
        finally:
            await channel.close()
        return [_monitor_verdict(config, item, fixes.get(item.name, "")) for item in reply.items]
    settings = config.monitor.pbx
    if not settings.url:
        return [Verdict("pbx", False, "[pbx] url is not set", "set [pbx] url to the 3CX V20 base URL")]
    from tcxhooks.monitor.pbx import xapi
    from tcxhooks.monitor.pbx.client import PbxClient

    pbx = PbxClient(settings)
    verdicts: list[Verdict] = []

    async def probe(name: str, action: Callable[[], Awaitable[str]]) -> None:
        try:
            verdicts.append(Verdict(f"pbx {name}", True, await action()))
        except Exception as exc:  # the message names what failed
            verdicts.append(Verdict(f"pbx {name}", False, str(exc), fixes[name]))

    async def token() -> str:
        await pbx.token()
        return f"token minted for client {settings.client_id}"

    async def callcontrol() -> str:
        dns = await pbx.get_json("/callcontrol")
        names = ", ".join(sorted(str(d.get("dn")) for d in dns if isinstance(d, dict)))[:200]
        return f"{len(dns)} DNs visible: {names}"

    async def recordings() -> str:
        await pbx.get_json("/xapi/v1/Recordings", {"$top": "1"})
        return "XAPI Recordings readable"

    try:
        await probe("token", token)
        if verdicts[-1].ok:
            await probe("callcontrol", callcontrol)
            await probe("recordings", recordings)
            if settings.reads_call_log:
                await probe("calllog", lambda: xapi.call_log_readable(pbx))
    finally:
        await pbx.aclose()
    return verdicts


async def _directory(config: Product) -> tuple[set[str], set[str], str]:
    """(extension numbers, queue numbers, where they came from) of the PBX directory."""
    from tcxhooks.v1 import monitor_service_pb2, monitor_service_pb2_grpc

    channel = await running(config, "monitor")
    if channel is not None:
        stub = monitor_service_pb2_grpc.MonitorServiceStub(channel)
        try:
            for attempt in range(DIRECTORY_WAIT * 2):  # a monitor that just started polls the directory first
                try:
                    queues = await stub.ListQueues(monitor_service_pb2.ListQueuesRequest(), timeout=10)
                    break
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == DIRECTORY_WAIT * 2 - 1:
                        raise RuntimeError(f"the running monitor answered {exc.code().name}: {exc.details()}") from None
                    await asyncio.sleep(0.5)
            extensions = await stub.ListExtensions(monitor_service_pb2.ListExtensionsRequest(), timeout=10)
        finally:
            await channel.close()
        return (
            {e.number for e in extensions.extensions},
            {q.number for q in queues.queues},
            "as the running monitor polled it",
        )
    if not config.monitor.pbx.url:
        raise RuntimeError("[pbx] url is not set")
    from tcxhooks.monitor.pbx.client import PbxClient
    from tcxhooks.monitor.status.xapi import Xapi

    pbx = PbxClient(config.monitor.pbx)
    try:
        xapi = Xapi(pbx)
        return {u.number for u in await xapi.users()}, {q.number for q in await xapi.queues()}, "read by check"
    finally:
        await pbx.aclose()


async def check_directory(config: Product) -> list[Verdict]:
    """The endpoints' queue and user filters against the PBX directory: a number the PBX does not have
    would let nothing through."""
    filtered = [hook for hook in config.dispatcher.webhooks if hook.queues or hook.users]
    if not filtered:
        return []
    try:
        extensions, queues, how = await _directory(config)
    except Exception as exc:  # the PBX lines above say why it cannot be read
        return [
            Verdict(
                "directory", False, f"cannot read the PBX directory: {exc}", "fix the pbx items above, then check again"
            )
        ]
    verdicts = []
    for hook in filtered:
        unknown = [f"queue {q}" for q in hook.queues if q not in queues]
        unknown += [f"extension {u}" for u in hook.users if u not in extensions]
        known = ", ".join(
            [f"queues {', '.join(hook.queues)}"] * bool(hook.queues)
            + [f"extensions {', '.join(hook.users)}"] * bool(hook.users)
        )
        detail = f"{', '.join(unknown)} not in the PBX directory" if unknown else f"{known} exist"
        verdicts.append(
            Verdict(
                f"filters {hook.name}",
                not unknown,
                f"[{hook.title}] {detail} ({how})",
                f"set [{hook.title}] queues / users to numbers the 3CX console lists",
            )
        )
    return verdicts
