"""Completes a call-ended event just before it is handed over: DID (report), rule name, callback, title.

Call Control shows no DID on extension legs and nothing about queue callbacks (docs/3cx.md §4.3, §5.5),
so `call.ended` may need XAPI report reads (callback.py); the result is cached per call id, so a retry or
the leg's RecordingsDue carries the same values.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from tcxhooks.v1 import common_pb2, events_pb2

from .callback import QueueExits, callback_state
from .errors import PbxError
from .facts import Facts, same_number
from .pbx import xapi
from .pbx.client import PbxClient
from .titles import title

log = logging.getLogger(__name__)
CACHE = 10_000


class Enricher:
    def __init__(self, pbx: PbxClient | None, facts: Facts, language: str, exits: QueueExits | None = None) -> None:
        self.pbx = pbx
        self.facts = facts
        # The call graph's record of callers leaving queues: whose callback the queue report counts.
        self.exits = exits if exits is not None else QueueExits()
        self.language = language
        self._done: OrderedDict[str, events_pb2.CallEvent] = OrderedDict()

    async def ended(self, call: events_pb2.CallEvent, occur: float, needs: str) -> events_pb2.CallEvent:
        cached = self._done.get(call.call_id)
        if cached is not None:
            return cached
        out = events_pb2.CallEvent()
        out.CopyFrom(call)
        wanted = set(needs.split(",")) if needs else set()
        if "did" in wanted and self.pbx is not None:
            await self._did(out, occur)
        if out.did and not out.did_name:
            out.did_name = self.facts.rule_name(out.did)
        if "callback" in wanted and out.queue:
            out.callback_state = await callback_state(
                self.pbx, self.exits, out.queue, out.call_id, occur, out.ring_seconds
            )
            out.callback = out.callback_state == common_pb2.CALLBACK_STATE_ORDERED
        out.title = title(out, self.language)
        self._done[call.call_id] = out
        while len(self._done) > CACHE:
            self._done.popitem(last=False)
        return out

    async def _did(self, out: events_pb2.CallEvent, occur: float) -> None:
        assert self.pbx is not None
        span = out.ring_seconds + out.duration_seconds + 120
        try:
            rows = await xapi.inbound_calls(self.pbx, occur - span, occur + 60)
        except PbxError as exc:
            log.warning("inbound-call report unavailable for %s: %s", out.call_id, exc)
            return
        matching = [r for r in rows if same_number(r.caller, out.caller_id) and r.start <= occur + 1]
        if matching:
            best = max(matching, key=lambda r: r.start)
            out.did = best.did
            out.did_name = best.rule_name or self.facts.rule_name(best.did)
