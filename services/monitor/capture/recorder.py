"""The monitor's recorder hook: what its PBX client and Call Control receive, as trace records, for listeners.

    recorder = Recorder()                              # one per monitor (server.py)
    recorder.record("frame", text=frame)               # nobody listening: returns at once
    with recorder.listen() as listener:                # a capture (MonitorService.Capture)
        line = await listener.next(timeout)

A record is one JSON object: `t` (unix seconds when it was received), `kind` and its fields (trace.py lists
the kinds). It is serialised once, when somebody listens (one too large for a gRPC message keeps only its
kind, time and size). A listener that falls more than `limit` lines
behind is cut off (`CaptureOverrun`) rather than slowing the monitor down. Callers never hand it a token, a secret
or a request header: only what the PBX answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import CaptureOverrun

LIMIT = 10_000  # lines a listener may fall behind
# A record longer than this is sent as its kind, time and size alone (`omitted`): one gRPC answer message
# carries one line, and a client takes at most 16 MiB (platform/limits.py).
MAX_LINE = 8 * 1024 * 1024


class Listener:
    def __init__(self, limit: int) -> None:
        self._lines: asyncio.Queue[str] = asyncio.Queue(limit)
        self.overrun = False

    def put(self, line: str) -> None:
        try:
            self._lines.put_nowait(line)
        except asyncio.QueueFull:
            self.overrun = True

    async def next(self, timeout: float) -> str | None:
        """The next line, or None when none came within `timeout` seconds; CaptureOverrun once one was lost."""
        if self.overrun:
            raise CaptureOverrun(f"the capture fell more than {self._lines.maxsize} records behind")
        try:
            return await asyncio.wait_for(self._lines.get(), timeout)
        except TimeoutError:
            return None


def encode(record: dict[str, Any]) -> str:
    """One trace line. ASCII JSON: a PBX string with a lone surrogate still makes a valid line."""
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=str)


class Recorder:
    def __init__(self, clock: Callable[[], float] = time.time, limit: int = LIMIT) -> None:
        self.clock = clock
        self.limit = limit
        self._listeners: set[Listener] = set()

    @property
    def listening(self) -> bool:
        return bool(self._listeners)

    def record(self, kind: str, **fields: Any) -> None:
        if not self._listeners:
            return
        moment = round(self.clock(), 6)
        line = encode({"t": moment, "kind": kind, **fields})
        if len(line) > MAX_LINE:
            line = encode({"t": moment, "kind": kind, "omitted": len(line)})
        for listener in self._listeners:
            listener.put(line)

    @contextlib.contextmanager
    def listen(self) -> Iterator[Listener]:
        listener = Listener(self.limit)
        self._listeners.add(listener)
        try:
            yield listener
        finally:
            self._listeners.discard(listener)
