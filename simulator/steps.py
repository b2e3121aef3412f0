"""The data a scenario is made of: steps on named legs of named calls (see SCENARIOS.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Upsert:
    """Create leg `leg` on `dn` (first time) or change its fields; `call` names the call (callid) it is in."""

    leg: str
    dn: str
    call: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Remove:
    """The leg ends (its participant disappears)."""

    leg: str


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Later:
    """`step` happens `seconds` from now while the script goes on (3CX removing an extension's other devices
    a moment after one of them answered)."""

    seconds: float
    step: Remove


@dataclass(frozen=True)
class SplitRecording:
    """The recorded device reconnected (mobile app): the current wav file is closed and a new one begins."""

    leg: str


@dataclass(frozen=True)
class OrderCallback:
    """The caller waiting in `queue` ordered a callback (shows in XAPI ReportQueueCallbacks)."""

    queue: str


Step = Upsert | Remove | Wait | Later | SplitRecording | OrderCallback


@dataclass(frozen=True)
class Script:
    """A scenario ready to play: its steps and the kind of each call (`inbound`/`outbound`/`internal`)."""

    name: str
    steps: tuple[Step, ...]
    calls: Mapping[str, str]
    did: str = ""
    recording_delay: float | None = None  # seconds until a finished wav shows in XAPI; None = server default
    falsify_log: str = ""  # a field the call log gets wrong for call A (calllog.FALSIFIABLE), for tests
