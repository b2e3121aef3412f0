"""Drives a mapping through one event: ask for the next call, make it, store the new leg state, repeat.

    trace = await run_steps(mapping, view, context, legs=legs, crm="b24", caller=client, fresh=True)
    trace.lines    # ["register: ok", "show: skipped (stale)", ...] for the delivery's attempt log

The state is stored after every call, before the next one is made: a retry after a crash, a timeout
or an error resumes at the first call not yet answered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from .errors import CrmError
from .event import CrmEvent
from .legstate import LegStore
from .metrics import STALE_SKIPPED
from .plan import Call, Mapping

log = logging.getLogger(__name__)
S = TypeVar("S")
C = TypeVar("C")
MAX_STEPS = 16  # no event needs more calls; more means a mapping that never finishes


class Caller(Protocol):
    """A CRM client: makes one call, returns the answer's result or raises CrmError."""

    async def call(self, call: Call) -> Any: ...


@dataclass
class Trace:
    """What one attempt did, one line per call, and the last HTTP status the CRM answered."""

    lines: list[str] = field(default_factory=list)
    status: int = 0

    def add(self, call: Call, outcome: str) -> None:
        self.lines.append(f"{call.step} ({call.method}): {outcome}")

    def text(self, limit: int = 1024) -> str:
        joined = "; ".join(self.lines)
        return joined if len(joined) <= limit else joined[: limit - 1] + "…"


async def run_steps(
    mapping: Mapping[S, C],
    event: CrmEvent,
    context: C,
    *,
    legs: LegStore,
    crm: str,
    caller: Caller,
    fresh: bool,
    trace: Trace | None = None,
) -> Trace:
    """Makes the event's calls in order; raises CrmError (with `trace` filled so far) when one fails
    and the mapping does not recover."""
    trace = trace if trace is not None else Trace()
    key = mapping.key(event)
    if key is None:
        return trace
    state = mapping.load(await legs.get(crm, key))
    for _ in range(MAX_STEPS):
        call = mapping.next_call(event, state, context)
        if call is None:
            return trace
        if call.realtime and not fresh:
            STALE_SKIPPED.labels(crm).inc()
            trace.add(call, "skipped (event older than stale_after)")
            state = mapping.on_skipped(event, state, call)
        else:
            try:
                result = await caller.call(call)
            except CrmError as error:
                trace.status = error.status or trace.status
                trace.add(call, f"failed: {error}")
                state = mapping.on_error(event, state, call, error)
            else:
                trace.status = 200
                trace.add(call, "ok")
                state = mapping.on_result(event, state, call, result)
        await legs.put(crm, key, mapping.dump(state))
    raise CrmError(f"the {crm} mapping asked for more than {MAX_STEPS} calls for one event", verdict="dead")
