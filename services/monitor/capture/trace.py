"""The trace format of `tcxhooks capture` (docs/3cx.md §8): one JSON object a line, in the order received.

Every line has `t` (unix seconds when the monitor received or applied it) and `kind`:

- `header`, the first line: `version`, `monitor` (its version), `settings` (call graph and language), `facts`
  (DN types, trunk DIDs, inbound rules, the DNs' directory names), `chains` and `finished` (the calls the monitor held, as it stores
  them), `snapshots` (resyncs so far);
- `open`, `close`: the Call Control WebSocket opened, or was lost or refused (`reason`);
- `frame`: a WebSocket frame as received (`text`; a binary frame: `binary`, its length);
- `snapshot`: a resync's `GET /callcontrol` answer as applied (`reason`: connect, gap, watchdog, unreadable,
  capture; `body`, or `error`);
- `upsert`: a participant as applied (`entity`; `body`: the GET answer, or the frame's attached data);
- `remove`: a participant gone (`entity`; `reason`: removed by a frame, gone (its GET answered 404),
  malformed (`body` unreadable));
- `xapi`: an XAPI answer the monitor used (`path`, `params`; `body`, or `status` and `error`);
- `token`: a token mint (`outcome`; `lifetime` in seconds), never the token itself.

A record too large for one gRPC message (over 8 MiB) keeps only `t`, `kind` and `omitted`, its size.

Tokens, secrets and request headers are never part of a record.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1
KINDS = frozenset({"header", "open", "close", "frame", "snapshot", "upsert", "remove", "xapi", "token"})
Record = dict[str, Any]


class TraceError(ValueError):
    """A file that is not a trace this version reads; the message names the line."""


@dataclass
class Trace:
    header: Record
    records: list[Record] = field(default_factory=list)


def check_record(record: Any, where: str) -> Record:
    """`record` if it is a trace record (an object with a finite time and a known kind), else TraceError."""
    if not isinstance(record, dict):
        raise TraceError(f"{where}: not a JSON object")
    moment = record.get("t")
    if isinstance(moment, bool) or not isinstance(moment, (int, float)) or not math.isfinite(moment):
        raise TraceError(f"{where}: no time `t`")
    if record.get("kind") not in KINDS:
        raise TraceError(f"{where}: unknown kind {record.get('kind')!r}")
    return record


def parse(lines: list[str], name: str = "trace") -> Trace:
    records: list[Record] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise TraceError(f"{name} line {number}: not JSON ({exc})") from None
        records.append(check_record(value, f"{name} line {number}"))
    if not records or records[0]["kind"] != "header":
        raise TraceError(f"{name}: the first line is not a trace header (is this a `tcxhooks capture` file?)")
    header = records[0]
    if header.get("version") != VERSION:
        raise TraceError(f"{name}: trace version {header.get('version')!r}; this tcxhooks reads version {VERSION}")
    return Trace(header, records[1:])


def read(path: str | Path) -> Trace:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"cannot read {path}: {exc}") from None
    return parse(text.splitlines(), str(path))
