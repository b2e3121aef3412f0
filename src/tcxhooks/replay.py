"""`tcxhooks replay trace.jsonl [--format form|json] [--dialing] [--timezone ZONE]`: the webhooks a trace gives,
with no PBX and no CRM.

The monitor's call graph and engine replay the trace in-process (docs/3cx.md §8), and each event they would
publish is checked and rendered by the dispatcher's own payload code, exactly as it would be sent: one body
a line, in the order the monitor hands them over, with their times in `--timezone` (the dispatcher's
`[pbx] timezone`; default: the host's). Call events only (no recordings or analytics), and the opt-in
`call.dialing` only with `--dialing` (as an endpoint gets it only when its `events` name it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"{name!r} is no IANA time zone such as Europe/Moscow") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="tcxhooks replay",
        description="Print the webhooks a trace of `tcxhooks capture` gives, replayed through the call graph.",
    )
    parser.add_argument("trace", help="a trace file written by tcxhooks capture")
    parser.add_argument("--format", choices=("form", "json"), default="form", help="webhook body format (form)")
    parser.add_argument(
        "--dialing", action="store_true", help="also the opt-in call.dialing events (outbound legs starting)"
    )
    parser.add_argument(
        "--timezone",
        type=_zone,
        default=None,
        help="IANA time zone of the bodies' times, as [pbx] timezone (default: the host's)",
    )
    args = parser.parse_args(argv)
    # What the monitor would have logged about the trace (anomalies, XAPI reads it lacks) goes to stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    from tcxhooks.dispatcher.errors import InvalidEvent
    from tcxhooks.dispatcher.payloads import render, validate
    from tcxhooks.monitor.capture.replay import replay
    from tcxhooks.monitor.capture.trace import TraceError, read
    from tcxhooks.v1 import events_pb2

    try:
        trace = read(args.trace)
    except TraceError as exc:
        print(f"tcxhooks replay: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    result = asyncio.run(replay(trace))
    for problem in result.skipped:
        print(f"tcxhooks replay: skipped {problem}", file=sys.stderr)
    for replayed in result.events:
        if replayed.event.call.type == events_pb2.CALL_EVENT_TYPE_DIALING and not args.dialing:
            continue
        try:
            validate(replayed.event)
        except InvalidEvent as exc:
            print(
                f"tcxhooks replay: the dispatcher would refuse event {replayed.event.event_id}: {exc}", file=sys.stderr
            )
            continue
        print(render(replayed.event, args.format, args.timezone).decode("utf-8"))
