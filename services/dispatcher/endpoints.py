"""The configured endpoints at run time: filter, sink, state (enabled / disabled / gone).

endpoints = Endpoints(ledger, [Endpoint("default", EndpointFilter.from_config(hook), sink, 16)])
await endpoints.load()                     # states saved by any replica
endpoints.route(new_event, attributes)     # names of the endpoints that get the event
await endpoints.set_state("default", enabled=True)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import UnknownEndpoint
from .filters import EndpointFilter
from .ledger import Ledger
from .metrics import BACKLOG_LIMIT, ENDPOINT_STATE
from .records import NewEvent, Routing
from .retry import RetryPolicy
from .schema import DISABLED, ENABLED, GONE
from .sinks import Sink

log = logging.getLogger(__name__)
STATE_NAMES = {ENABLED: "enabled", DISABLED: "disabled", GONE: "gone"}


@dataclass
class Endpoint:
    name: str
    filter: EndpointFilter
    sink: Sink
    concurrency: int  # deliveries of this endpoint in flight at once (each chain has at most one)
    max_backlog: int  # pending deliveries it takes at most; events beyond are refused (counted)
    retry: RetryPolicy | None = None  # its own retry schedule ([crm] retry_schedule); None: the dispatcher's
    state: int = ENABLED
    backlog: int = 0  # pending deliveries: counted by housekeeping, plus those stored since
    failures: int = 0
    last_error: str = ""
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)

    @property
    def enabled(self) -> bool:
        return self.state == ENABLED

    def show_state(self) -> None:
        for value, label in STATE_NAMES.items():
            ENDPOINT_STATE.labels(self.name, label).set(1 if value == self.state else 0)
        BACKLOG_LIMIT.labels(self.name).set(self.max_backlog)

    @property
    def refusal(self) -> str:
        """Why it takes no new deliveries now ("" when it takes them)."""
        if self.state != ENABLED:
            return STATE_NAMES.get(self.state, "disabled")
        return "backlog_full" if self.backlog >= self.max_backlog else ""


class Endpoints:
    def __init__(self, ledger: Ledger, endpoints: list[Endpoint]) -> None:
        self.ledger = ledger
        self.by_name = {e.name: e for e in endpoints}
        self._dirty: set[str] = set()
        self._track = any(e.filter.dids or e.filter.queues or e.filter.users for e in endpoints)
        self._filtered = frozenset(e.name for e in endpoints if not e.filter.passes_all)

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self.by_name.values())

    def get(self, name: str) -> Endpoint:
        try:
            return self.by_name[name]
        except KeyError:
            raise UnknownEndpoint(f"no endpoint named {name!r} (known: {', '.join(self.by_name)})") from None

    def routing(self) -> Routing:
        """How a publish routes its events now. Endpoints that take no new deliveries (disabled,
        gone, backlog full) are refused them: what they already hold stays; a refused event is lost
        to them, so it is counted and logged."""
        return Routing(
            self.route,
            self._track,
            self._filtered,
            {e.name: reason for e in self.by_name.values() if (reason := e.refusal)},
        )

    def stored(self, names: tuple[str, ...]) -> None:
        for name in names:
            self.by_name[name].backlog += 1

    def enabled_names(self) -> list[str]:
        return [e.name for e in self.by_name.values() if e.enabled]

    def route(self, item: NewEvent, attributes: dict[str, set[str]]) -> list[str]:
        return [e.name for e in self.by_name.values() if e.filter.matches(item.form_name, item.json_type, attributes)]

    async def load(self) -> None:
        """Takes the states stored by any replica (a 410 seen elsewhere disables here too)."""
        rows = await self.ledger.endpoint_rows()
        for endpoint in self.by_name.values():
            row = rows.get(endpoint.name)
            if endpoint.name in self._dirty:
                continue  # our newer state (e.g. a 410 just seen) is saved by the next flush
            if row is None:
                await self.ledger.save_endpoint(endpoint.name, endpoint.state, 0, "")
            elif row.state != endpoint.state:
                endpoint.state = row.state
                log.info("endpoint %s is %s", endpoint.name, STATE_NAMES.get(row.state, row.state))
            endpoint.show_state()

    def note(self, endpoint: Endpoint, ok: bool, error: str = "") -> None:
        """Remembers the last answer (saved by `flush`)."""
        if ok and endpoint.failures == 0:
            return
        endpoint.failures = 0 if ok else endpoint.failures + 1
        endpoint.last_error = "" if ok else error[:500]
        self._dirty.add(endpoint.name)

    def mark_gone(self, endpoint: Endpoint) -> None:
        if endpoint.state != GONE:
            log.error(
                "endpoint %s answered 410 Gone: disabled until re-enabled (tcxhooks endpoints enable %s)",
                endpoint.name,
                endpoint.name,
            )
            endpoint.state = GONE
            endpoint.show_state()
            self._dirty.add(endpoint.name)

    async def flush(self) -> None:
        for name in sorted(self._dirty):
            endpoint = self.by_name[name]
            await self.ledger.save_endpoint(name, endpoint.state, endpoint.failures, endpoint.last_error)
        self._dirty.clear()

    async def set_state(self, name: str, enabled: bool) -> Endpoint:
        endpoint = self.get(name)
        endpoint.state = ENABLED if enabled else DISABLED
        if enabled:
            endpoint.failures, endpoint.last_error = 0, ""
        endpoint.show_state()
        await self.ledger.save_endpoint(name, endpoint.state, endpoint.failures, endpoint.last_error)
        log.info("endpoint %s %s by an operator", name, "enabled" if enabled else "disabled")
        return endpoint

    async def close(self) -> None:
        for endpoint in self.by_name.values():
            await endpoint.sink.close()
