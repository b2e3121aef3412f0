"""The store-backed queue of deliveries (SQLite or PostgreSQL behind one class).

    outbox = Outbox(store, owner="replica-uuid")
    await outbox.migrate()
    published, claimed = await outbox.publish(new_events, route, claim={"crm": 16}, lease_ttl=60)
    claimed = await outbox.cycle(outcomes, limits={"crm": 256}, lease_ttl=60)   # finish, then claim

One row per (event, endpoint) in `dispatcher_deliveries`. Ordering per endpoint and chain is kept
by the `ready` flag: only the pending delivery with the lowest sequence of its (endpoint, chain)
is ready, and only ready rows are claimed; finishing it (delivered or dead) readies the next one.
A claimed row is not ready while its lease runs (a retry, a release or the reaper readies it again),
so the claim query never walks over deliveries in flight.
Publish and finish lock the chain's row (Postgres `FOR UPDATE`), so a publish racing a finish in
another replica cannot leave a chain without a ready head. Claims take a lease (owner, until);
Postgres claims with `FOR UPDATE SKIP LOCKED`; an expired lease makes the row claimable again.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, NamedTuple, Sequence, TypeVar

from tcxhooks.platform.store import Migration, Row, Store, Work, execute, executemany, fetchall
from tcxhooks.v1 import events_pb2

S = TypeVar("S")
PENDING, DELIVERED, DEAD = 1, 2, 3
ENABLED, DISABLED, GONE = 1, 2, 3
_CHUNK = 500
_MAX_PARAMS = 30000  # below SQLite's 32766 and Postgres' 65535 bind parameters

# The first schema, one text for both dialects (they differ in the binary and serial key types)
_SCHEMA_1 = """
CREATE TABLE dispatcher_chains (
  chain TEXT PRIMARY KEY,
  last_sequence BIGINT NOT NULL,
  dids TEXT NOT NULL DEFAULT '',
  queues TEXT NOT NULL DEFAULT '',
  users TEXT NOT NULL DEFAULT '',
  updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE dispatcher_events (
  event_id TEXT PRIMARY KEY,
  chain TEXT NOT NULL,
  sequence BIGINT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL,
  payload {blob} NOT NULL
);
CREATE INDEX dispatcher_events_chain ON dispatcher_events (chain);
CREATE TABLE dispatcher_deliveries (
  id {serial_key},
  event_id TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  chain TEXT NOT NULL,
  sequence BIGINT NOT NULL,
  event_type TEXT NOT NULL,
  call_id TEXT NOT NULL,
  status SMALLINT NOT NULL,
  ready SMALLINT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  created_at DOUBLE PRECISION NOT NULL,
  next_attempt_at DOUBLE PRECISION NOT NULL,
  lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
  lease_owner TEXT NOT NULL DEFAULT '',
  finished_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX dispatcher_deliveries_event ON dispatcher_deliveries (event_id, endpoint);
CREATE INDEX dispatcher_deliveries_ready ON dispatcher_deliveries (next_attempt_at) WHERE status = 1 AND ready = 1;
CREATE INDEX dispatcher_deliveries_pending ON dispatcher_deliveries (endpoint, chain, sequence) WHERE status = 1;
CREATE INDEX dispatcher_deliveries_call ON dispatcher_deliveries (call_id);
CREATE INDEX dispatcher_deliveries_chain ON dispatcher_deliveries (chain);
CREATE INDEX dispatcher_deliveries_finished ON dispatcher_deliveries (finished_at) WHERE status = 2;
CREATE TABLE dispatcher_attempts (
  id {serial_key},
  delivery_id BIGINT NOT NULL,
  number INTEGER NOT NULL,
  at DOUBLE PRECISION NOT NULL,
  http_status INTEGER NOT NULL,
  latency DOUBLE PRECISION NOT NULL,
  response TEXT NOT NULL,
  error TEXT NOT NULL
);
CREATE INDEX dispatcher_attempts_delivery ON dispatcher_attempts (delivery_id);
CREATE TABLE dispatcher_endpoints (
  name TEXT PRIMARY KEY,
  state SMALLINT NOT NULL,
  failures INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  updated_at DOUBLE PRECISION NOT NULL
)
"""

MIGRATIONS = [
    Migration(1, _SCHEMA_1.format(blob="BLOB", serial_key="INTEGER PRIMARY KEY AUTOINCREMENT"),
              _SCHEMA_1.format(blob="BYTEA", serial_key="BIGSERIAL PRIMARY KEY")),
    # claims are made per endpoint: a disabled endpoint's backlog is never walked over
    Migration(2, """
DROP INDEX dispatcher_deliveries_ready;
CREATE INDEX dispatcher_deliveries_ready ON dispatcher_deliveries (endpoint, next_attempt_at) WHERE status = 1 AND ready = 1
"""),
    # chain first: "which endpoints have a pending delivery in these chains" (every publish) reads
    # only pending rows, not every delivery a long-lived chain such as `ext:101` ever had
    Migration(3, """
DROP INDEX dispatcher_deliveries_pending;
CREATE INDEX dispatcher_deliveries_pending ON dispatcher_deliveries (chain, endpoint, sequence) WHERE status = 1
"""),
]


@dataclass(frozen=True)
class NewEvent:
    """A validated event and what routing needs: its names and filter attributes."""

    event: events_pb2.Event
    form_name: str
    json_type: str
    call_id: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class Published:
    sequence: int
    duplicate: bool
    deliveries: int


# route(new_event, attributes incl. the chain's) → endpoint names the event goes to
Router = Callable[[NewEvent, dict[str, set[str]]], list[str]]


# Claimed, AttemptRecord and Outcome are named tuples: the delivery path makes one of each per webhook,
# and a tuple is built several times faster than a frozen dataclass.
class Claimed(NamedTuple):
    id: int
    endpoint: str
    event_id: str
    chain: str
    sequence: int
    attempts: int
    failures: int
    created_at: float
    payload: bytes


class AttemptRecord(NamedTuple):
    number: int
    at: float
    http_status: int
    latency: float
    response: str
    error: str


class Outcome(NamedTuple):
    """What became of one claimed delivery. `result`: delivered, retry, dead or release."""

    delivery: Claimed
    result: str
    attempt: AttemptRecord | None = None
    next_attempt_at: float = 0.0


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    event_id: str
    endpoint: str
    chain: str
    sequence: int
    event_type: str
    call_id: str
    status: int
    attempts: int
    created_at: float
    next_attempt_at: float
    attempt_log: list[AttemptRecord] = field(default_factory=list)


@dataclass(frozen=True)
class EndpointRow:
    name: str
    state: int
    failures: int
    last_error: str


@dataclass
class _Chain:
    """A chain's last sequence and the DIDs, queues and users its call events named (for filters).

    The stored newline-joined lists are parsed only when a filter needs them."""

    last: int
    stored: tuple[str, str, str]
    _parsed: dict[str, set[str]] | None = None

    @property
    def attributes(self) -> dict[str, set[str]]:
        if self._parsed is None:
            self._parsed = {key: _split(text) for key, text in zip(("did", "queue", "user"), self.stored)}
        return self._parsed

    def joined(self) -> tuple[str, str, str]:
        if self._parsed is None:
            return self.stored
        did, queue, user = ("\n".join(sorted(self._parsed[k])) for k in ("did", "queue", "user"))
        return did, queue, user


_DELIVERY_COLUMNS = ("id, event_id, endpoint, chain, sequence, event_type, call_id, status, attempts, "
                     "created_at, next_attempt_at")


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _chunks(items: Sequence[S], size: int = _CHUNK) -> Iterable[Sequence[S]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _insert(target: str, rows: Sequence[tuple[object, ...]], tail: str = "", returning: str = "") -> Work[list[Row]]:
    """Multi-row INSERTs (`target` = "table (columns)"), one statement per chunk: far cheaper than
    executemany's round trips on Postgres, and on SQLite than executemany's per-row steps, each of
    which gives up the GIL and waits to take it back from a busy event loop. With `returning`
    (columns), the inserted rows' values of those columns."""
    fetched: list[Row] = []
    if not rows:
        return fetched
    width = len(rows[0])
    row_marks = f"({_marks(width)})"
    for chunk in _chunks(rows, max(1, min(_CHUNK, _MAX_PARAMS // width))):
        values = ", ".join([row_marks] * len(chunk))
        params = [v for row in chunk for v in row]
        if returning:
            fetched += yield fetchall(f"INSERT INTO {target} VALUES {values}{tail} RETURNING {returning}", params)
        else:
            yield execute(f"INSERT INTO {target} VALUES {values}{tail}", params)
    return fetched


def _split(text: str) -> set[str]:
    return {part for part in text.split("\n") if part}


class Outbox:
    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.owner = owner
        self.postgres = store.dialect == "postgres"

    async def migrate(self) -> None:
        await self.store.migrate("dispatcher", MIGRATIONS)

    def _in(self, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
        """`column` is one of `values` (at most a few thousand). On SQLite one statement text whatever
        their number, so the hot statements are prepared once, not per batch size. Postgres keeps
        literal lists: its generic plan for `= ANY(array)` measured slower here. An empty list matches
        nothing (`IN ()` is a syntax error on Postgres)."""
        if not values:
            return "1 = 0", []
        if self.postgres:
            return f"{column} IN ({_marks(len(values))})", list(values)
        return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(values))]

    # --- publish -------------------------------------------------------------------------

    async def publish(self, batch: Sequence[NewEvent], route: Router, track: bool = True,
                      claim: Mapping[str, int] | None = None, lease_ttl: float = 0.0
                      ) -> tuple[list[Published], list[Claimed]]:
        """Stores a batch of events and their deliveries in one transaction (idempotent on event_id).

        `track`: keep each chain's DIDs / queues / users for endpoints with attribute filters.
        `claim`: up to this many deliveries per endpoint that are their chain's head are stored
        already claimed (leased for `lease_ttl`) and returned, so the caller sends them without a
        claim transaction of its own."""
        return await self.store.run(self._publish(batch, route, track, dict(claim or {}), lease_ttl))

    def _publish(self, batch: Sequence[NewEvent], route: Router, track: bool, claim: dict[str, int],
                 lease_ttl: float) -> Work[tuple[list[Published], list[Claimed]]]:
        now = time.time()
        until = now + lease_ttl
        stored: dict[str, int] = {}
        known, params = self._in("event_id", list(dict.fromkeys(item.event.event_id for item in batch)))
        rows = yield fetchall(f"SELECT event_id, sequence FROM dispatcher_events WHERE {known}", params)
        stored.update((str(event_id), int(sequence)) for event_id, sequence in rows)
        fresh: list[NewEvent] = []
        seen: set[str] = set()
        for item in batch:
            if item.event.event_id not in stored and item.event.event_id not in seen:
                seen.add(item.event.event_id)
                fresh.append(item)
        chain_names = sorted({item.event.chain for item in fresh})
        chains = yield from self._lock_chains(chain_names, now)
        pending = yield from self._pending_heads(chain_names)
        event_rows: list[tuple[object, ...]] = []
        delivery_rows: list[tuple[object, ...]] = []
        leased_rows: list[tuple[object, ...]] = []
        payloads: dict[str, bytes] = {}
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
            event_rows.append((event.event_id, event.chain, state.last, now, payload))
            for endpoint in endpoints:
                head = (endpoint, event.chain) not in pending
                pending.add((endpoint, event.chain))
                row = (event.event_id, endpoint, event.chain, state.last, item.json_type, item.call_id, PENDING)
                if head and claim.get(endpoint, 0) > 0:
                    claim[endpoint] -= 1
                    payloads[event.event_id] = payload
                    leased_rows.append((*row, 0, now, now, until, self.owner))
                else:
                    delivery_rows.append((*row, 1 if head else 0, now, now, 0, ""))
            results[event.event_id] = Published(state.last, False, len(endpoints))
        if event_rows:
            yield from _insert("dispatcher_events (event_id, chain, sequence, created_at, payload)", event_rows)
            yield from _insert("dispatcher_chains (chain, last_sequence, dids, queues, users, updated_at)",
                               [(chain, s.last, *s.joined(), now) for chain, s in chains.items()],
                               " ON CONFLICT (chain) DO UPDATE SET last_sequence = excluded.last_sequence, "
                               "dids = excluded.dids, queues = excluded.queues, users = excluded.users, "
                               "updated_at = excluded.updated_at")
        columns = ("dispatcher_deliveries (event_id, endpoint, chain, sequence, event_type, call_id, status, ready, "
                   "created_at, next_attempt_at, lease_until, lease_owner)")
        yield from _insert(columns, delivery_rows)
        leased = yield from _insert(columns, leased_rows, returning="id, event_id, endpoint, chain, sequence")
        claimed = [Claimed(int(r[0]), str(r[2]), str(r[1]), str(r[3]), int(r[4]), 0, 0, now, payloads[str(r[1])])
                   for r in leased]
        out: list[Published] = []
        answered: set[str] = set()
        for item in batch:
            event_id = item.event.event_id
            if event_id in stored:
                out.append(Published(stored[event_id], True, 0))
            elif event_id in answered:
                out.append(Published(results[event_id].sequence, True, 0))
            else:
                answered.add(event_id)
                out.append(results[event_id])
        return out, claimed

    def _lock_chains(self, chains: list[str], now: float) -> Work[dict[str, _Chain]]:
        """Current state of each chain (created when new), locked for this transaction on Postgres."""
        if not chains:
            return {}
        yield from _insert("dispatcher_chains (chain, last_sequence, updated_at)",
                                [(chain, 0, now) for chain in chains], " ON CONFLICT (chain) DO NOTHING")
        lock = " ORDER BY chain FOR UPDATE" if self.postgres else ""
        named, params = self._in("chain", chains)
        rows = yield fetchall(f"SELECT chain, last_sequence, dids, queues, users FROM dispatcher_chains "
                              f"WHERE {named}{lock}", params)
        return {chain: _Chain(int(last), (str(dids), str(queues), str(users))) for chain, last, dids, queues, users in rows}

    def _pending_heads(self, chains: list[str]) -> Work[set[tuple[str, str]]]:
        """(endpoint, chain) pairs that already have a pending delivery."""
        if not chains:
            return set()
        named, params = self._in("chain", chains)
        rows = yield fetchall(f"SELECT DISTINCT endpoint, chain FROM dispatcher_deliveries WHERE status = {PENDING} "
                              f"AND {named}", params)
        return {(str(e), str(c)) for e, c in rows}

    # --- delivery cycle ------------------------------------------------------------------

    async def cycle(self, outcomes: Sequence[Outcome], limits: Mapping[str, int], lease_ttl: float) -> list[Claimed]:
        """Records finished attempts, readies each chain's next delivery, and claims due deliveries:
        up to `limits[endpoint]` per endpoint (so a slow endpoint cannot take every claim)."""
        return await self.store.run(self._cycle(outcomes, limits, lease_ttl))

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
        finished = sorted({(o.delivery.endpoint, o.delivery.chain) for o in outcomes if o.result in ("delivered", "dead")})
        if self.postgres and finished:
            named, params = self._in("chain", sorted({chain for _, chain in finished}))
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
            chosen, params = self._in("id", groups[key])
            yield execute(f"UPDATE dispatcher_deliveries SET {assignments}, lease_until = 0, lease_owner = '' "
                          f"WHERE {guard} {chosen}", (*stamp, owner, *params))
        retries = [(o.next_attempt_at, owner, o.delivery.id) for o in outcomes if o.result == "retry"]
        if retries:
            yield executemany(
                "UPDATE dispatcher_deliveries SET attempts = attempts + 1, failures = failures + 1, "
                f"next_attempt_at = ?, ready = 1, lease_until = 0, lease_owner = '' WHERE {guard} id = ?", retries)
        yield from _insert("dispatcher_attempts (delivery_id, number, at, http_status, latency, response, error)",
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
                chosen, params = self._in("id", ids)
                yield execute(f"UPDATE dispatcher_deliveries SET lease_until = ?, lease_owner = ?, ready = 0 "
                              f"WHERE {chosen}", (until, self.owner, *params))
        if not ids:
            return []
        chosen, params = self._in("d.id", ids)
        claimed = yield fetchall(
            "SELECT d.id, d.endpoint, d.event_id, d.chain, d.sequence, d.attempts, d.failures, d.created_at, e.payload "
            f"FROM dispatcher_deliveries d JOIN dispatcher_events e ON e.event_id = d.event_id WHERE {chosen} "
            "ORDER BY d.next_attempt_at, d.id", params)
        return [Claimed(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5]), int(r[6]), float(r[7]),
                        bytes(r[8])) for r in claimed]

    async def renew(self, ids: Sequence[int], lease_ttl: float) -> None:
        """Extends the lease of deliveries this replica still holds."""
        until = time.time() + lease_ttl
        async with self.store.transaction() as tx:
            for chunk in _chunks(list(ids)):
                await tx.execute(f"UPDATE dispatcher_deliveries SET lease_until = ? WHERE lease_owner = ? "
                                 f"AND id IN ({_marks(len(chunk))})", (until, self.owner, *chunk))

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

    # --- housekeeping, admin -------------------------------------------------------------

    async def prune(self, keep_seconds: float, chunk: int = 5000) -> int:
        """Removes delivered deliveries (and their attempts, and unreferenced events) older than the cutoff."""
        cutoff = time.time() - keep_seconds
        removed = 0
        while True:
            async with self.store.transaction() as tx:
                rows = await tx.fetchall(f"SELECT id FROM dispatcher_deliveries WHERE status = {DELIVERED} "
                                         "AND finished_at < ? LIMIT ?", (cutoff, chunk))
                ids = [int(r[0]) for r in rows]
                for part in _chunks(ids):
                    await tx.execute(f"DELETE FROM dispatcher_attempts WHERE delivery_id IN ({_marks(len(part))})", part)
                    await tx.execute(f"DELETE FROM dispatcher_deliveries WHERE id IN ({_marks(len(part))})", part)
            removed += len(ids)
            if len(ids) < chunk:
                break
        async with self.store.transaction() as tx:
            await tx.execute("DELETE FROM dispatcher_events WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM "
                             "dispatcher_deliveries d WHERE d.event_id = dispatcher_events.event_id)", (cutoff,))
            await tx.execute("DELETE FROM dispatcher_chains WHERE updated_at < ? AND NOT EXISTS (SELECT 1 FROM "
                             "dispatcher_events e WHERE e.chain = dispatcher_chains.chain)", (cutoff,))
        return removed

    async def list_deliveries(self, status: int, call_id: str, endpoint: str, limit: int,
                              with_attempts: bool) -> list[DeliveryRow]:
        where: list[str] = ["1 = 1"]
        params: list[object] = []
        if status:
            where.append("status = ?")
            params.append(status)
        if call_id:
            where.append("(call_id = ? OR chain = ?)")
            params += [call_id, call_id]
        if endpoint:
            where.append("endpoint = ?")
            params.append(endpoint)
        rows = await self.store.fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM dispatcher_deliveries WHERE {' AND '.join(where)} "
            "ORDER BY id DESC LIMIT ?", (*params, limit))
        result = [DeliveryRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), str(r[6]), int(r[7]),
                              int(r[8]), float(r[9]), float(r[10])) for r in rows]
        if with_attempts and result:
            logs: dict[int, list[AttemptRecord]] = {}
            ids = [row.id for row in result]
            attempt_rows = await self.store.fetchall(
                "SELECT delivery_id, number, at, http_status, latency, response, error FROM dispatcher_attempts "
                f"WHERE delivery_id IN ({_marks(len(ids))}) ORDER BY id", ids)
            for a in attempt_rows:
                logs.setdefault(int(a[0]), []).append(AttemptRecord(int(a[1]), float(a[2]), int(a[3]), float(a[4]),
                                                                    str(a[5]), str(a[6])))
            for row in result:
                row.attempt_log.extend(logs.get(row.id, []))
        return list(reversed(result))

    async def redeliver(self, ids: Sequence[int], since: float | None, dead: bool) -> int:
        """Queues deliveries again (new attempts, same webhook-id); returns how many."""
        now = time.time()
        async with self.store.transaction() as tx:
            selected: set[int] = set()
            for chunk in _chunks(list(ids)):
                rows = await tx.fetchall(f"SELECT id FROM dispatcher_deliveries WHERE id IN ({_marks(len(chunk))})",
                                         chunk)
                selected.update(int(r[0]) for r in rows)
            if since is not None:
                rows = await tx.fetchall("SELECT id FROM dispatcher_deliveries WHERE created_at >= ?", (since,))
                selected.update(int(r[0]) for r in rows)
            if dead:
                rows = await tx.fetchall(f"SELECT id FROM dispatcher_deliveries WHERE status = {DEAD}")
                selected.update(int(r[0]) for r in rows)
            if not selected:
                return 0
            chosen = sorted(selected)
            pairs: set[tuple[str, str]] = set()
            for chunk in _chunks(chosen):
                rows = await tx.fetchall(f"SELECT DISTINCT endpoint, chain FROM dispatcher_deliveries "
                                         f"WHERE id IN ({_marks(len(chunk))})", chunk)
                pairs.update((str(e), str(c)) for e, c in rows)
            if self.postgres:
                chains = sorted({c for _, c in pairs})
                for chain_chunk in _chunks(chains):
                    await tx.fetchall(f"SELECT chain FROM dispatcher_chains WHERE chain IN "
                                      f"({_marks(len(chain_chunk))}) ORDER BY chain FOR UPDATE", chain_chunk)
            for chunk in _chunks(chosen):
                await tx.execute(
                    f"UPDATE dispatcher_deliveries SET status = {PENDING}, failures = 0, next_attempt_at = ?, "
                    f"finished_at = NULL WHERE id IN ({_marks(len(chunk))})", (now, *chunk))
            await tx.executemany(
                "UPDATE dispatcher_deliveries SET ready = CASE WHEN id = (SELECT id FROM dispatcher_deliveries p "
                f"WHERE p.endpoint = ? AND p.chain = ? AND p.status = {PENDING} ORDER BY p.sequence LIMIT 1) "
                f"THEN 1 ELSE 0 END WHERE endpoint = ? AND chain = ? AND status = {PENDING}",
                [(e, c, e, c) for e, c in sorted(pairs)])
            return len(chosen)

    async def endpoint_rows(self) -> dict[str, EndpointRow]:
        rows = await self.store.fetchall("SELECT name, state, failures, last_error FROM dispatcher_endpoints")
        return {str(r[0]): EndpointRow(str(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in rows}

    async def save_endpoint(self, name: str, state: int, failures: int, last_error: str) -> None:
        await self.store.execute(
            "INSERT INTO dispatcher_endpoints (name, state, failures, last_error, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET state = excluded.state, failures = excluded.failures, "
            "last_error = excluded.last_error, updated_at = excluded.updated_at",
            (name, state, failures, last_error, time.time()))

    async def pending_stats(self) -> dict[str, tuple[int, float]]:
        """endpoint → (pending deliveries, creation time of the oldest)."""
        rows = await self.store.fetchall(f"SELECT endpoint, COUNT(*), MIN(created_at) FROM dispatcher_deliveries "
                                         f"WHERE status = {PENDING} GROUP BY endpoint")
        return {str(r[0]): (int(r[1]), float(r[2])) for r in rows}
