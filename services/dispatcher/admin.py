"""The dispatcher's CLI subcommands (docs/config.md), talking to a running dispatcher over gRPC.

    tcxhooks deliveries [-c FILE] [--status pending|delivered|dead] [--call ID] [--endpoint NAME] [--attempts]
    tcxhooks redeliver  [-c FILE] ID|WEBHOOK-ID... | --since T | --dead
    tcxhooks endpoints  [-c FILE] [list | enable NAME | disable NAME | ping [NAME]]

The ini file gives the dispatcher's address and the service token. Exit codes: 0 done, 2 bad
usage or configuration (or a request the dispatcher rejects), 1 the dispatcher cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

import grpc

from tcxhooks.platform.config import Config, ConfigError, load_config
from tcxhooks.platform.configfile import add_config_option, find_config
from tcxhooks.platform.grpc import describe_token, open_channel
from tcxhooks.platform.settings import PlatformSettings
from tcxhooks.platform.values import parse_duration
from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tcxhooks.v1 import dispatcher_service_pb2_grpc

STATUS = {
    "pending": pb.DELIVERY_STATUS_PENDING,
    "delivered": pb.DELIVERY_STATUS_DELIVERED,
    "dead": pb.DELIVERY_STATUS_DEAD,
}
STATUS_NAMES = {v: k for k, v in STATUS.items()}
STATE_NAMES = {
    pb.ENDPOINT_STATE_ENABLED: "enabled",
    pb.ENDPOINT_STATE_DISABLED: "disabled",
    pb.ENDPOINT_STATE_GONE: "gone (410)",
}
TIMEOUT = 30.0


class UsageError(Exception):
    """A bad argument found after parsing (exit 2)."""


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"tcxhooks {command}")
    add_config_option(parser)
    parser.add_argument("--address", help="dispatcher host:port (default: [services] dispatcher)")
    if command == "deliveries":
        parser.description = "List deliveries, newest last."
        parser.add_argument("--status", choices=sorted(STATUS))
        parser.add_argument("--call", default="", help="a call id, or a chain (the id without -<link>)")
        parser.add_argument("--endpoint", default="")
        parser.add_argument("--limit", type=int, default=100)
        parser.add_argument("--attempts", action="store_true", help="show every attempt")
    elif command == "redeliver":
        parser.description = "Send deliveries again (same webhook-id, new attempts)."
        parser.add_argument(
            "ids", nargs="*", metavar="ID", help="delivery ids as listed by `tcxhooks deliveries`, or webhook-ids"
        )
        parser.add_argument("--since", help="every delivery created since T (ISO time, or a duration ago: 2h)")
        parser.add_argument("--dead", action="store_true", help="every dead delivery")
    else:
        parser.description = "List endpoints and their state; enable, disable or ping one."
        parser.add_argument("action", nargs="?", default="list", choices=("list", "enable", "disable", "ping"))
        parser.add_argument("name", nargs="?", default="")
    return parser


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """`2025-11-25T18:00` (local time unless it has an offset) or a duration ago (`2h`, `30m`)."""
    current = now or dt.datetime.now().astimezone()
    try:
        return current - dt.timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected an ISO time such as 2025-11-25T18:00 or a duration such as 2h"
        ) from None
    return when if when.tzinfo else when.astimezone()


def _time(stamp: Any) -> str:
    if not stamp.seconds:
        return "-"
    return dt.datetime.fromtimestamp(stamp.seconds).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in rows]
    return "\n".join(lines)


async def _deliveries(stub: Any, args: argparse.Namespace) -> str:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    reply = await stub.ListDeliveries(
        pb.ListDeliveriesRequest(
            status=STATUS.get(args.status or "", pb.DELIVERY_STATUS_UNSPECIFIED),
            call_id=args.call,
            endpoint=args.endpoint,
            limit=args.limit,
            with_attempts=args.attempts,
        ),
        timeout=TIMEOUT,
    )
    if not reply.deliveries:
        return "no deliveries"
    rows = []
    for d in reply.deliveries:
        rows.append(
            [
                d.id,
                STATUS_NAMES.get(d.status, "?"),
                d.endpoint,
                d.event_type,
                d.call_id or d.chain,
                str(d.sequence),
                str(d.attempts),
                _time(d.created_time),
                _time(d.next_attempt_time) if d.status == pb.DELIVERY_STATUS_PENDING else "-",
                d.webhook_id,
            ]
        )
        for a in d.attempt_log:
            outcome = f"HTTP {a.http_status}" if a.http_status else (a.error or "no answer")
            detail = a.error if a.http_status and a.error else a.response_snippet.replace("\n", " ")[:60]
            rows.append(
                [
                    "",
                    f"  #{a.number}",
                    _time(a.time),
                    outcome,
                    f"{a.latency_seconds * 1000:.0f} ms",
                    "",
                    "",
                    "",
                    detail,
                    "",
                ]
            )
    return table(
        ["ID", "STATUS", "ENDPOINT", "EVENT", "CALL", "SEQ", "ATTEMPTS", "CREATED", "NEXT ATTEMPT", "WEBHOOK-ID"], rows
    )


async def _redeliver(stub: Any, args: argparse.Namespace) -> str:
    if not (args.ids or args.since or args.dead):
        raise UsageError("name delivery ids, --since T or --dead")
    request = pb.RedeliverRequest(delivery_ids=args.ids, dead=args.dead)
    if args.since:
        request.since_time.FromDatetime(parse_since(args.since).astimezone(dt.UTC))
    reply = await stub.Redeliver(request, timeout=TIMEOUT)
    return f"{reply.count} deliveries queued again"


async def _endpoints(stub: Any, args: argparse.Namespace) -> str:
    if args.action in ("enable", "disable"):
        if not args.name:
            raise UsageError(f"endpoints {args.action} NAME")
        reply = await stub.SetEndpointState(
            pb.SetEndpointStateRequest(name=args.name, enabled=args.action == "enable"), timeout=TIMEOUT
        )
        return f"endpoint {reply.endpoint.name} is {STATE_NAMES.get(reply.endpoint.state, '?')}"
    if args.action == "ping":
        reply = await stub.PingEndpoint(pb.PingEndpointRequest(name=args.name), timeout=TIMEOUT)
        return table(
            ["ENDPOINT", "RESULT", "HTTP", "LATENCY", "ERROR"],
            [
                [
                    r.endpoint,
                    "ok" if r.ok else "FAILED",
                    str(r.http_status or "-"),
                    f"{r.latency_seconds * 1000:.0f} ms",
                    r.error,
                ]
                for r in reply.results
            ],
        )
    if args.name:
        raise UsageError("endpoints list takes no name")
    reply = await stub.ListEndpoints(pb.ListEndpointsRequest(), timeout=TIMEOUT)
    return table(
        ["NAME", "STATE", "FORMAT", "PENDING", "OLDEST", "FAILURES", "URL", "LAST ERROR"],
        [
            [
                e.name,
                STATE_NAMES.get(e.state, "?"),
                e.format,
                str(e.pending),
                f"{e.oldest_pending_age_seconds:.0f}s" if e.pending else "-",
                str(e.consecutive_failures),
                e.url,
                e.last_error,
            ]
            for e in reply.endpoints
        ],
    )


COMMANDS = {"deliveries": _deliveries, "redeliver": _redeliver, "endpoints": _endpoints}


async def _run(config: Config, args: argparse.Namespace, command: str) -> str:
    channel = open_channel(config[PlatformSettings].services, "dispatcher", args.address)
    try:
        stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)
        return await COMMANDS[command](stub, args)
    finally:
        await channel.close()


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in COMMANDS:
        print(f"tcxhooks: expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        raise SystemExit(2)
    command = argv[0]
    args = _parser(command).parse_args(argv[1:])
    try:
        config = load_config(find_config(args.config), (PlatformSettings,))
        print(asyncio.run(_run(config, args, command)))
    except (ConfigError, UsageError) as exc:
        print(f"tcxhooks {command}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        sent = f"; this command sent {describe_token(config)}" if code == grpc.StatusCode.UNAUTHENTICATED else ""
        print(f"tcxhooks {command}: dispatcher answered {code.name}: {exc.details()}{sent}", file=sys.stderr)
        raise SystemExit(2 if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND) else 1) from None
