"""Publishing into the outbox (outbox.py): one transaction stores a batch of events, numbers them in their
chains, and writes each endpoint's delivery, readying (or claiming) it when it is its chain's head.

The chain rows are locked (Postgres `FOR UPDATE`) so a publish racing a finish in another replica cannot
leave a chain without a ready head; a lease fence older than the store has seen stores nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tcxhooks.platform.store import Work, fetchall

from .records import Claimed, NewEvent, Published, Routing
from .schema import PENDING
from .sql import insert, one_of

# one encoder for every chain of every publish: json.dumps with separators builds a new one per call
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def _split(text: str) -> set[str]:
    return {part for part in text.split("\n") if part}


def message_id() -> str:
    """A new webhook-id: `msg_` and a UUIDv7 (RFC 9562: milliseconds since the epoch, then 74 random
    bits), unique across stores and replicas, in creation order. Rows stored before webhook-ids were
    kept have none: their deliveries keep the `msg_<delivery id>` they were first sent with."""
    random = int.from_bytes(os.urandom(10), "big")
    value = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | (random >> 68) << 64 | 0b10 << 62 | random & (1 << 62) - 1
    return f"msg_{value:032x}"


@dataclass
class _Chain:
    """A chain's last sequence and the DIDs, queues and users its call events named (for filters).

    The stored newline-joined lists are parsed only when a filter needs them."""

    last: int
    stored: tuple[str, str, str]
    numbered: str = ""  # JSON {endpoint: its last endpoint_sequence in this chain}, filtered endpoints only
    _parsed: dict[str, set[str]] | None = None
    _numbers: dict[str, int] | None = field(default=None, repr=False)

    @property
    def attributes(self) -> dict[str, set[str]]:
        if self._parsed is None:
            self._parsed = {key: _split(text) for key, text in zip(("did", "queue", "user"), self.stored, strict=False)}
        return self._parsed

    def number(self, endpoint: str) -> int:
        """The next endpoint_sequence of this chain for `endpoint`."""
        if self._numbers is None:
            self._numbers = json.loads(self.numbered) if self.numbered else {}
        taken = self._numbers[endpoint] = self._numbers.get(endpoint, 0) + 1
        return taken

    def numbers(self) -> str:
        return self.numbered if self._numbers is None else _COMPACT.encode(self._numbers)

    def joined(self) -> tuple[str, str, str]:
        if self._parsed is None:
            return self.stored
        did, queue, user = ("\n".join(sorted(self._parsed[k])) for k in ("did", "queue", "user"))
        return did, queue, user


def publish_work(
    batch: Sequence[NewEvent], routing: Routing, claim: dict[str, int], lease_ttl: float, owner: str, postgres: bool
) -> Work[tuple[list[Published], list[Claimed]]]:
    """The transaction of Outbox.publish (outbox.py); `owner` leases the deliveries it claims."""
    route, track, filtered, refusing = routing.route, routing.track, routing.filtered, routing.refusing
    now = time.time()
    until = now + lease_ttl
    stale = yield from _stale_fences({item.fence for item in batch if item.fence is not None}, postgres)
    admitted = [item for item in batch if item.fence not in stale] if stale else batch
    if not admitted:
        return [Published(0, False, 0, stale=True) for _ in batch], []
    stored: dict[str, int] = {}
    known, params = one_of("event_id", list(dict.fromkeys(item.event.event_id for item in admitted)), postgres)
    rows = yield fetchall(f"SELECT event_id, sequence FROM dispatcher_events WHERE {known}", params)
    stored.update((str(event_id), int(sequence)) for event_id, sequence in rows)
    fresh: list[NewEvent] = []
    seen: set[str] = set()
    for item in admitted:
        if item.event.event_id not in stored and item.event.event_id not in seen:
            seen.add(item.event.event_id)
            fresh.append(item)
    chain_names = sorted({item.event.chain for item in fresh})
    chains = yield from _lock_chains(chain_names, now, postgres)
    pending = yield from _pending_heads(chain_names, postgres)
    event_rows: list[tuple[object, ...]] = []
    delivery_rows: list[tuple[object, ...]] = []
    leased_rows: list[tuple[object, ...]] = []
    payloads: dict[str, tuple[bytes, str]] = {}
    results: dict[str, Published] = {}
    for item in fresh:
        event = item.event
        state = chains[event.chain]
        state.last += 1
        if not track:
            attributes: dict[str, set[str]] = {}
        elif item.attributes:
            for key, value in item.attributes.items():
                state.attributes[key].add(value)
            attributes = {k: {v} for k, v in item.attributes.items()}
        else:
            attributes = {k: set(v) for k, v in state.attributes.items()}
        endpoints = route(item, attributes)
        payload = event.SerializeToString()
        msg_id = message_id()
        event_rows.append((event.event_id, event.chain, state.last, now, payload, msg_id))
        refused: list[str] = []
        taken: list[str] = []
        for endpoint in endpoints:
            number = state.number(endpoint) if endpoint in filtered else state.last
            if endpoint in refusing:
                refused.append(endpoint)
                continue
            taken.append(endpoint)
            head = (endpoint, event.chain) not in pending
            pending.add((endpoint, event.chain))
            row = (event.event_id, endpoint, event.chain, state.last, item.json_type, item.call_id, PENDING, number)
            if head and claim.get(endpoint, 0) > 0:
                claim[endpoint] -= 1
                payloads[event.event_id] = (payload, msg_id)
                leased_rows.append((*row, 0, now, now, until, owner))
            else:
                delivery_rows.append((*row, 1 if head else 0, now, now, 0, ""))
        results[event.event_id] = Published(state.last, False, len(taken), tuple(taken), tuple(refused))
    if event_rows:
        yield from insert(
            "dispatcher_events (event_id, chain, sequence, created_at, payload, message_id)",
            event_rows,
            postgres=postgres,
        )
        yield from insert(
            "dispatcher_chains (chain, last_sequence, dids, queues, users, endpoint_sequences, updated_at)",
            [(chain, s.last, *s.joined(), s.numbers(), now) for chain, s in chains.items()],
            " ON CONFLICT (chain) DO UPDATE SET last_sequence = excluded.last_sequence, "
            "dids = excluded.dids, queues = excluded.queues, users = excluded.users, "
            "endpoint_sequences = excluded.endpoint_sequences, updated_at = excluded.updated_at",
            postgres=postgres,
        )
    columns = (
        "dispatcher_deliveries (event_id, endpoint, chain, sequence, event_type, call_id, status, "
        "endpoint_sequence, ready, created_at, next_attempt_at, lease_until, lease_owner)"
    )
    yield from insert(columns, delivery_rows, postgres=postgres)
    leased = yield from insert(
        columns, leased_rows, returning="id, event_id, endpoint, chain, sequence, endpoint_sequence", postgres=postgres
    )
    claimed = [
        Claimed(int(r[0]), str(r[2]), str(r[1]), str(r[3]), int(r[4]), 0, 0, now, *payloads[str(r[1])], int(r[5]))
        for r in leased
    ]
    out: list[Published] = []
    answered: set[str] = set()
    for item in batch:
        event_id = item.event.event_id
        if item.fence in stale:
            out.append(Published(0, False, 0, stale=True))
        elif event_id in stored:
            out.append(Published(stored[event_id], True, 0))
        elif event_id in answered:
            out.append(Published(results[event_id].sequence, True, 0))
        else:
            answered.add(event_id)
            out.append(results[event_id])
    return out, claimed


def _stale_fences(fences: set[tuple[str, int]], postgres: bool) -> Work[set[tuple[str, int]]]:
    """Records the highest number of each lease in `fences` and returns the fences below what the store
    has seen: their events are not stored. On Postgres the fence row stays locked until the commit, so a
    stale holder's events cannot slip in after its successor's."""
    if not fences:
        return set()
    highest: dict[str, int] = {}
    for lease, number in fences:
        highest[lease] = max(number, highest.get(lease, number))
    yield from insert(
        "dispatcher_fences (lease, number)",
        sorted(highest.items()),
        " ON CONFLICT (lease) DO UPDATE SET number = excluded.number WHERE dispatcher_fences.number < excluded.number",
        postgres=postgres,
    )
    named, params = one_of("lease", sorted(highest), postgres)
    rows = yield fetchall(f"SELECT lease, number FROM dispatcher_fences WHERE {named}", params)
    seen = {str(lease): int(number) for lease, number in rows}
    return {fence for fence in fences if fence[1] < seen[fence[0]]}


def _lock_chains(chains: list[str], now: float, postgres: bool) -> Work[dict[str, _Chain]]:
    """Current state of each chain (created when new), locked for this transaction on Postgres."""
    if not chains:
        return {}
    yield from insert(
        "dispatcher_chains (chain, last_sequence, updated_at)",
        [(chain, 0, now) for chain in chains],
        " ON CONFLICT (chain) DO NOTHING",
        postgres=postgres,
    )
    lock = " ORDER BY chain FOR UPDATE" if postgres else ""
    named, params = one_of("chain", chains, postgres)
    rows = yield fetchall(
        f"SELECT chain, last_sequence, dids, queues, users, endpoint_sequences FROM "
        f"dispatcher_chains WHERE {named}{lock}",
        params,
    )
    return {str(r[0]): _Chain(int(r[1]), (str(r[2]), str(r[3]), str(r[4])), str(r[5])) for r in rows}


def _pending_heads(chains: list[str], postgres: bool) -> Work[set[tuple[str, str]]]:
    """(endpoint, chain) pairs that already have a pending delivery."""
    if not chains:
        return set()
    named, params = one_of("chain", chains, postgres)
    rows = yield fetchall(
        f"SELECT DISTINCT endpoint, chain FROM dispatcher_deliveries WHERE status = {PENDING} AND {named}", params
    )
    return {(str(e), str(c)) for e, c in rows}
