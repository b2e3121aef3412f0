"""The pure part of an adapter: (event, stored leg state) → the next CRM call, and how its answer
changes the state. No I/O here; `engine.run_steps` drives it.

    class MyMapping:                                   # implements Mapping[MyLeg, MyContext]
        def key(self, event): return event.call_id or None
        def next_call(self, event, leg, context): ...  # Call(...) or None when the event is done
        def on_result(self, event, leg, call, result): return replace(leg, crm_id=result["id"])

One event usually takes a few calls; each call's answer is stored before the next call is made, so
a retry after a crash or a timeout continues where the last attempt stopped.
"""

from __future__ import annotations

from collections.abc import Mapping as Map
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from .errors import CrmError
from .event import CrmEvent

S = TypeVar("S")
C_contra = TypeVar("C_contra", contravariant=True)


@dataclass(frozen=True)
class Upload:
    """File content the client fetches from `urls` (joined in order) and sends base64-encoded in
    `params[field]`: for CRMs that cannot reach our recording links themselves."""

    urls: tuple[str, ...]
    field: str


@dataclass(frozen=True)
class Call:
    """One CRM request a mapping asks for.

    `step` names what the call does for the leg (the mapping's own word, shown in the attempt log);
    `realtime` marks a screen-pop step: it takes the limiter's priority lane and is skipped when
    its event is older than `stale_after`."""

    step: str
    method: str
    params: Map[str, Any] = field(default_factory=dict)
    realtime: bool = False
    upload: Upload | None = None


class Mapping(Protocol[S, C_contra]):
    """What an adapter's pure mapping provides (S: the leg state, C: per-event context)."""

    def key(self, event: CrmEvent) -> str | None:
        """The leg state this event works on; None: nothing to do for this event."""

    def load(self, raw: Map[str, Any] | None) -> S:
        """The leg state from its stored JSON (None: a leg not seen yet)."""

    def dump(self, state: S) -> dict[str, Any]:
        """The leg state as JSON to store."""

    def next_call(self, event: CrmEvent, state: S, context: C_contra) -> Call | None:
        """The next request for this event, or None once the event is fully delivered."""

    def on_result(self, event: CrmEvent, state: S, call: Call, result: Any) -> S:
        """The state after `call` succeeded with `result` (the CRM's answer)."""

    def on_error(self, event: CrmEvent, state: S, call: Call, error: CrmError) -> S:
        """The state after `call` failed, when the mapping can go on; raises `error` (or another
        CrmError) when the attempt must end."""

    def on_skipped(self, event: CrmEvent, state: S, call: Call) -> S:
        """The state after a real-time `call` was skipped (its event was stale)."""
