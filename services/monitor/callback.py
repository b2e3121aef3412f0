"""Whether the caller of a call missed at a queue ordered a callback (docs/webhooks.md §3 `callback`).

3CX V20 shows no callback in Call Control, and its one report of ordered callbacks, ReportQueueCallbacks, gives
counts per queue over a period, never a caller (docs/3cx.md §4.3, §5.6). A count alone cannot tell whose callback
it was, so the count is tied to this call by time, with what the monitor itself saw of the queue:

- no callback counted in the queue over the call's wait: NOT_ORDERED;
- one counted, and no other caller left that queue unanswered over that time: ORDERED (ordering a callback
  ends the caller's call after a short confirmation, inferred: callers answered or still waiting did not);
- otherwise by the moment this caller left: none counted then, NOT_ORDERED (the callbacks were other
  callers'); one counted then and nobody else left the queue unanswered around that moment, ORDERED;
- another caller left it unanswered around that moment too, or the report cannot be read: UNKNOWN.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque

from tcxhooks.v1 import common_pb2

from .errors import PbxError
from .pbx import xapi
from .pbx.client import PbxClient

ORDER_SLACK = 1.5  # seconds a callback may be counted before the caller's call ends (the confirmation)
KEEP = 120.0  # seconds a queue exit is remembered
log = logging.getLogger(__name__)


class QueueExits:
    """When callers left a queue unanswered (calls missed at the queue), as the call graph saw them."""

    def __init__(self) -> None:
        self._seen: deque[tuple[str, str, float]] = deque()  # (queue, chain, moment), oldest first

    def record(self, queue: str, chain: str, moment: float) -> None:
        self._seen.append((queue, chain, moment))
        while self._seen and self._seen[0][2] < moment - KEEP:
            self._seen.popleft()

    def others(self, queue: str, chain: str, start: float, end: float) -> list[str]:
        """Other chains that left `queue` unanswered within [start, end]."""
        return [c for q, c, moment in self._seen if q == queue and c != chain and start <= moment <= end]


def chain_of(call_id: str) -> str:
    return call_id.rsplit("-", 1)[0]


async def callback_state(
    pbx: PbxClient | None, exits: QueueExits, queue: str, call_id: str, left: float, waited: float
) -> common_pb2.CallbackState:
    """The CallbackState of the call `call_id` that left `queue` unanswered at `left` after waiting `waited` s."""
    if pbx is None:
        return common_pb2.CALLBACK_STATE_UNKNOWN
    # XAPI takes whole seconds (xapi.iso truncates): the report counts from the second `start` falls in,
    # so the callers who may have ordered what it counts are looked for from that second too.
    me, start, end = chain_of(call_id), float(math.floor(left - waited - 2)), left + 2
    try:
        if await xapi.callbacks_count(pbx, queue, start, end) == 0:
            return common_pb2.CALLBACK_STATE_NOT_ORDERED
        # A caller who ordered one in this window may still be on the line for the confirmation: wait for it.
        pause = left + ORDER_SLACK + 2.5 - time.time()
        if pause > 0:
            await asyncio.sleep(pause)
        if not exits.others(queue, me, start, end + ORDER_SLACK):
            return common_pb2.CALLBACK_STATE_ORDERED  # nobody else who could have ordered it
        if await xapi.callbacks_count(pbx, queue, left - ORDER_SLACK, left + 1) == 0:
            return common_pb2.CALLBACK_STATE_NOT_ORDERED
    except PbxError as exc:
        log.warning("queue callbacks of %s unknown for %s: %s", queue, call_id, exc)
        return common_pb2.CALLBACK_STATE_UNKNOWN
    if exits.others(queue, me, left - ORDER_SLACK - 1, left + ORDER_SLACK + 1):
        return common_pb2.CALLBACK_STATE_UNKNOWN
    return common_pb2.CALLBACK_STATE_ORDERED
