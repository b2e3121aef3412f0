"""The hot path of the store-backed queue of deliveries (SQLite or PostgreSQL behind one class).

    outbox = Outbox(store, owner="replica-uuid")
    await outbox.migrate()
    published, claimed = await outbox.publish(new_events, Routing(route), claim={"crm": 16}, lease_ttl=60)
    claimed = await outbox.cycle(outcomes, limits={"crm": 256}, lease_ttl=60)   # finish, then claim

One row per (event, endpoint) in `dispatcher_deliveries` (schema.py). Ordering per endpoint and
chain is kept by the `ready` flag: only the pending delivery with the lowest sequence of its
(endpoint, chain) is ready, and only ready rows are claimed; finishing it (delivered or dead)
readies the next one. A claimed row is not ready while its lease runs (a retry, a release or the
reaper readies it again), so the claim query never walks over deliveries in flight.
Publish and finish lock the chain's row (Postgres `FOR UPDATE`), so a publish racing a finish in
another replica cannot leave a chain without a ready head. Claims take a lease (owner, until);
Postgres claims with `FOR UPDATE SKIP LOCKED`; an expired lease makes the row claimable again.
What operators do with the queue (list, redeliver, prune) is the ledger's (ledger.py).
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tcxhooks.platform.store import Store, Work, execute, executemany, fetchall

from .records import Claimed, NewEvent, Outcome, Published, Routing
from .schema import DEAD, DELIVERED, MIGRATIONS, PENDING
from .sql import chunks, insert, marks, one_of


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
        return self.numbered if self._numbers is None else json.dumps(self._numbers, separators=(",", ":"))

    def joined(self) -> tuple[str, str, str]:
        if self._parsed is None:
            return self.stored
        did, queue, user = ("\n".join(sorted(self._parsed[k])) for k in ("did", "queue", "user"))
        return did, queue, user


class Outbox:
    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.owner = owner
        self.postgres = store.dialect == "postgres"

    async def migrate(self) -> None:
        await self.store.migrate("dispatcher", MIGRATIONS)

    # --- publish -------------------------------------------------------------------------

    async def publish(self, batch: Sequence[NewEvent], routing: Routing, claim: Mapping[str, int] | None = None,
                      lease_ttl: float = 0.0) -> tuple[list[Published], list[Claimed]]:
        """Stores a batch of events and their deliveries in one transaction (idempotent on event_id).

        `routing`: which endpoints get each event (Routing).
        `claim`: up to this many deliveries per endpoint that are their chain's head are stored
        already claimed (leased for `lease_ttl`) and returned, so the caller sends them without a
        claim transaction of its own.
        An endpoint in `routing.refusing` (disabled, or its backlog full) gets no delivery, but the
        event still takes its next endpoint_sequence: the gap tells the receiver it missed one."""
        return await self.store.run(self._publish(batch, routing, dict(claim or {}), lease_ttl))

    def _publish(self, batch: Sequence[NewEvent], routing: Routing, claim: dict[str, int],
                 lease_ttl: float) -> Work[tuple[list[Published], list[Claimed]]]:
        route, track, filtered, refusing = routing.route, routing.track, routing.filtered, routing.refusing
        now = time.time()
        until = now + lease_ttl
        stale = yield from self._stale_fences({item.fence for item in batch if item.fence is not None})
        admitted = [item for item in batch if item.fence not in stale] if stale else batch
        if not admitted:
            return [Published(0, False, 0, stale=True) for _ in batch], []
        stored: dict[str, int] = {}
        known, params = one_of("event_id", list(dict.fromkeys(item.event.event_id for item in admitted)),
                               self.postgres)
        rows = yield fetchall(f"SELECT event_id, sequence FROM dispatcher_events WHERE {known}", params)
        stored.update((str(event_id), int(sequence)) for event_id, sequence in rows)
        fresh: list[NewEvent] = []
        seen: set[str] = set()
        for item in admitted:
            if item.event.event_id not in stored and item.event.event_id not in seen:
                seen.add(item.event.event_id)
                fresh.append(item)
        chain_names = sorted({item.event.chain for item in fresh})
        chains = yield from self._lock_chains(chain_names, now)
        pending = yield from self._pending_heads(chain_names)
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
                row = (event.event_id, endpoint, event.chain, state.last, item.json_type, item.call_id, PENDING,
                       number)
                if head and claim.get(endpoint, 0) > 0:
                    claim[endpoint] -= 1
                    payloads[event.event_id] = (payload, msg_id)
                    leased_rows.append((*row, 0, now, now, until, self.owner))
                else:
                    delivery_rows.append((*row, 1 if head else 0, now, now, 0, ""))
            results[event.event_id] = Published(state.last, False, len(taken), tuple(taken), tuple(refused))
        if event_rows:
            yield from insert("dispatcher_events (event_id, chain, sequence, created_at, payload, message_id)",
                              event_rows)
            yield from insert("dispatcher_chains (chain, last_sequence, dids, queues, users, endpoint_sequences, "
                              "updated_at)",
                              [(chain, s.last, *s.joined(), s.numbers(), now) for chain, s in chains.items()],
                              " ON CONFLICT (chain) DO UPDATE SET last_sequence = excluded.last_sequence, "
                              "dids = excluded.dids, queues = excluded.queues, users = excluded.users, "
                              "endpoint_sequences = excluded.endpoint_sequences, updated_at = excluded.updated_at")
        columns = ("dispatcher_deliveries (event_id, endpoint, chain, sequence, event_type, call_id, status, "
                   "endpoint_sequence, ready, created_at, next_attempt_at, lease_until, lease_owner)")
        yield from insert(columns, delivery_rows)
        leased = yield from insert(columns, leased_rows,
                                   returning="id, event_id, endpoint, chain, sequence, endpoint_sequence")
        claimed = [Claimed(int(r[0]), str(r[2]), str(r[1]), str(r[3]), int(r[4]), 0, 0, now, *payloads[str(r[1])],
                           int(r[5])) for r in leased]
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

    def _stale_fences(self, fences: set[tuple[str, int]]) -> Work[set[tuple[str, int]]]:
        """Records the highest number of each lease in `fences` and returns the fences below what the store
        has seen: their events are not stored. On Postgres the fence row stays locked until the commit, so a
        stale holder's events cannot slip in after its successor's."""
        if not fences:
            return set()
        highest: dict[str, int] = {}
        for lease, number in fences:
            highest[lease] = max(number, highest.get(lease, number))
        yield from insert("dispatcher_fences (lease, number)", sorted(highest.items()),
                          " ON CONFLICT (lease) DO UPDATE SET number = excluded.number"
                          " WHERE dispatcher_fences.number < excluded.number")
        named, params = one_of("lease", sorted(highest), self.postgres)
        rows = yield fetchall(f"SELECT lease, number FROM dispatcher_fences WHERE {named}", params)
        seen = {str(lease): int(number) for lease, number in rows}
        return {fence for fence in fences if fence[1] < seen[fence[0]]}

    def _lock_chains(self, chains: list[str], now: float) -> Work[dict[str, _Chain]]:
        """Current state of each chain (created when new), locked for this transaction on Postgres."""
        if not chains:
            return {}
        yield from insert("dispatcher_chains (chain, last_sequence, updated_at)",
                                [(chain, 0, now) for chain in chains], " ON CONFLICT (chain) DO NOTHING")
        lock = " ORDER BY chain FOR UPDATE" if self.postgres else ""
        named, params = one_of("chain", chains, self.postgres)
        rows = yield fetchall(f"SELECT chain, last_sequence, dids, queues, users, endpoint_sequences FROM "
                              f"dispatcher_chains WHERE {named}{lock}", params)
        return {str(r[0]): _Chain(int(r[1]), (str(r[2]), str(r[3]), str(r[4])), str(r[5])) for r in rows}

    def _pending_heads(self, chains: list[str]) -> Work[set[tuple[str, str]]]:
        """(endpoint, chain) pairs that already have a pending delivery."""
        if not chains:
            return set()
        named, params = one_of("chain", chains, self.postgres)
        rows = yield fetchall(f"SELECT DISTINCT endpoint, chain FROM dispatcher_deliveries WHERE status = {PENDING} "
                              f"AND {named}", params)
        return {(str(e), str(c)) for e, c in rows}

    # --- delivery cycle ------------------------------------------------------------------

    async def cycle(self, outcomes: Sequence[Outcome], limits: Mapping[str, int], lease_ttl: float) -> list[Claimed]:
        """Records finished attempts, readies each chain's next delivery, and claims due deliveries:
        up to `limits[endpoint]` per endpoint (so a slow endpoint cannot take every claim).

        Not durable (platform/store.py): a kill -9 loses none of it. A power cut may lose the newest
        cycles, never one before another: their deliveries are pending again and go out again after the
        restart, in order, with the same webhook-id (the duplicate the promise allows, docs/webhooks.md);
        claims lost with them were leases nobody else holds. The events themselves were stored durably at
        publish, before the monitor was told."""
        return await self.store.run(self._cycle(outcomes, limits, lease_ttl), durable=False)

    def _cycle(self, outcomes: Sequence[Outcome], limits: Mapping[str, int], lease_ttl: float) -> Work[list[Claimed]]:
        now = time.time()
        claimed: list[Claimed] = []
        if outcomes:
            yield from self._finish(outcomes, now)
        for endpoint, limit in limits.items():
            if limit > 0:
                claimed += yield from self._claim(limit, endpoint, now, now + lease_ttl)
        return claimed

    def _finish(self, outcomes: Sequence[Outcome], now: float) -> Work[None]:
        finished = sorted({(o.delivery.endpoint, o.delivery.chain) for o in outcomes
                           if o.result in ("delivered", "dead")})
        if self.postgres and finished:
            named, params = one_of("chain", sorted({chain for _, chain in finished}), self.postgres)
            yield fetchall(f"SELECT chain FROM dispatcher_chains WHERE {named} ORDER BY chain FOR UPDATE", params)
        owner = self.owner
        # every update is guarded by our lease: a row another replica took over (lease expired) is its own
        guard = f"lease_owner = ? AND status = {PENDING} AND"
        sets = {
            "delivered": f"status = {DELIVERED}, ready = 0, attempts = attempts + 1, failures = 0, finished_at = ?",
            "dead": f"status = {DEAD}, ready = 0, attempts = attempts + 1, failures = failures + 1, finished_at = ?",
            "release_sent": "attempts = attempts + 1, ready = 1",
            "release": "ready = 1",
        }
        groups: dict[str, list[int]] = {}
        for outcome in outcomes:
            key = "release_sent" if outcome.result == "release" and outcome.attempt else outcome.result
            groups.setdefault(key, []).append(outcome.delivery.id)
        for key, assignments in sets.items():
            if key not in groups:
                continue
            stamp: tuple[object, ...] = (now,) if "finished_at" in assignments else ()
            chosen, params = one_of("id", groups[key], self.postgres)
            yield execute(f"UPDATE dispatcher_deliveries SET {assignments}, lease_until = 0, lease_owner = '' "
                          f"WHERE {guard} {chosen}", (*stamp, owner, *params))
        retries = [(o.next_attempt_at, owner, o.delivery.id) for o in outcomes if o.result == "retry"]
        if retries:
            yield executemany(
                "UPDATE dispatcher_deliveries SET attempts = attempts + 1, failures = failures + 1, "
                f"next_attempt_at = ?, ready = 1, lease_until = 0, lease_owner = '' WHERE {guard} id = ?", retries)
        yield from insert("dispatcher_attempts (delivery_id, number, at, http_status, latency, response, error)",
                           [(o.delivery.id, o.attempt.number, o.attempt.at, o.attempt.http_status, o.attempt.latency,
                             o.attempt.response, o.attempt.error) for o in outcomes if o.attempt is not None])
        if not finished:
            return
        if self.postgres:
            heads = f"(VALUES {', '.join(['(?, ?)'] * len(finished))}) AS h (endpoint, chain)"
            params = [value for pair in finished for value in pair]
        else:
            heads = ("(SELECT json_extract(value, '$[0]') AS endpoint, json_extract(value, '$[1]') AS chain "
                     "FROM json_each(?)) h")
            params = [json.dumps(finished)]
        yield execute(
            "UPDATE dispatcher_deliveries SET ready = 1 WHERE id IN (SELECT (SELECT p.id FROM dispatcher_deliveries p "
            f"WHERE p.endpoint = h.endpoint AND p.chain = h.chain AND p.status = {PENDING} "
            f"ORDER BY p.sequence LIMIT 1) FROM {heads})", params)

    def _claim(self, limit: int, endpoint: str, now: float, until: float) -> Work[list[Claimed]]:
        where = f"status = {PENDING} AND ready = 1 AND endpoint = ? AND next_attempt_at <= ? AND lease_until <= ?"
        params = (endpoint, now, now)
        if self.postgres:
            rows = yield fetchall(
                "UPDATE dispatcher_deliveries SET lease_until = ?, lease_owner = ?, ready = 0 WHERE id IN ("
                f"SELECT id FROM dispatcher_deliveries WHERE {where} ORDER BY next_attempt_at LIMIT ? "
                "FOR UPDATE SKIP LOCKED) RETURNING id", (until, self.owner, *params, limit))
            ids = [int(r[0]) for r in rows]
        else:
            rows = yield fetchall(f"SELECT id FROM dispatcher_deliveries WHERE {where} "
                                  "ORDER BY next_attempt_at LIMIT ?", (*params, limit))
            ids = [int(r[0]) for r in rows]
            if ids:
                chosen, values = one_of("id", ids, self.postgres)
                yield execute(f"UPDATE dispatcher_deliveries SET lease_until = ?, lease_owner = ?, ready = 0 "
                              f"WHERE {chosen}", (until, self.owner, *values))
        if not ids:
            return []
        chosen, values = one_of("d.id", ids, self.postgres)
        claimed = yield fetchall(
            "SELECT d.id, d.endpoint, d.event_id, d.chain, d.sequence, d.attempts, d.failures, d.created_at, "
            "e.payload, e.message_id, d.endpoint_sequence FROM dispatcher_deliveries d JOIN dispatcher_events e "
            f"ON e.event_id = d.event_id WHERE {chosen} ORDER BY d.next_attempt_at, d.id", values)
        return [Claimed(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5]), int(r[6]), float(r[7]),
                        bytes(r[8]), str(r[9]) or f"msg_{r[0]}", int(r[10])) for r in claimed]

    async def renew(self, ids: Sequence[int], lease_ttl: float) -> None:
        """Extends the lease of deliveries this replica still holds."""
        until = time.time() + lease_ttl
        async with self.store.transaction() as tx:
            for chunk in chunks(list(ids)):
                await tx.execute(f"UPDATE dispatcher_deliveries SET lease_until = ? WHERE lease_owner = ? "
                                 f"AND id IN ({marks(len(chunk))})", (until, self.owner, *chunk))

    async def release_all(self) -> int:
        """SQLite only (one dispatcher per file): leases of a previous, killed process are void."""
        return int(await self.store.execute(
            f"UPDATE dispatcher_deliveries SET ready = 1, lease_until = 0, lease_owner = '' "
            f"WHERE status = {PENDING} AND lease_until > 0"))

    async def reap(self) -> int:
        """Clears expired leases (their replica died or stalled); returns how many."""
        now = time.time()
        return int(await self.store.execute(
            f"UPDATE dispatcher_deliveries SET ready = 1, lease_until = 0, lease_owner = '' "
            f"WHERE status = {PENDING} AND lease_until > 0 AND lease_until <= ?", (now,)))
