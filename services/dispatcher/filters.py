"""Which endpoints get an event (docs/webhooks.md §5).

    f = EndpointFilter.from_config(webhook_config)
    f.matches("hangupincoming", "call.answered", {"did": "74951234567", "user": "101"})

`events` lists form names or JSON types (`*`: all but the opt-in `dialing` / `call.dialing`, which an
endpoint gets only when its `events` names it). `dids`, `queues` and `users`, when set, must
each be satisfied by the event: its own `did` / `queue` / `user`, or, for the recording and
analytics events that carry none, the values seen on the call events of the same chain. An event
without the attribute a set filter asks for does not match (a DID filter gets no status events).
A ping ignores the attribute filters (it proves the endpoint answers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

_FILTERED = (("dids", "did"), ("queues", "queue"), ("users", "user"))
# Events `*` leaves out: an endpoint gets them only when its `events` names them (docs/webhooks.md §3).
OPT_IN = frozenset({"dialing", "call.dialing"})
Attributes = dict[str, set[str]]


class FilterSettings(Protocol):
    """The filter keys a `[webhook:NAME]` section (or any other endpoint's section) has."""

    @property
    def events(self) -> tuple[str, ...]: ...

    @property
    def dids(self) -> tuple[str, ...]: ...

    @property
    def queues(self) -> tuple[str, ...]: ...

    @property
    def users(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class EndpointFilter:
    events: frozenset[str]
    dids: frozenset[str]
    queues: frozenset[str]
    users: frozenset[str]

    @classmethod
    def from_config(cls, hook: FilterSettings) -> EndpointFilter:
        return cls(frozenset(hook.events), frozenset(hook.dids), frozenset(hook.queues), frozenset(hook.users))

    @property
    def passes_all(self) -> bool:
        """Whether every event goes through (`*` and the opt-in events named, no attribute filter)."""
        return "*" in self.events and bool(self.events & OPT_IN) and not (self.dids or self.queues or self.users)

    def matches(self, form_name: str, json_type: str, attributes: Attributes) -> bool:
        named = form_name in self.events or json_type in self.events
        if not named and ("*" not in self.events or form_name in OPT_IN):
            return False
        if json_type == "webhook.ping":
            return True
        for filter_name, attribute in _FILTERED:
            wanted: frozenset[str] = getattr(self, filter_name)
            if wanted and not wanted & attributes.get(attribute, set()):
                return False
        return True
