"""The hot path of the store-backed queue of deliveries (SQLite or PostgreSQL behind one class).

    outbox = Outbox(store, owner="replica-uuid")
    await outbox.migrate()
    published, claimed = await outbox.publish(new_events, Routing(route), claim={"crm": 16}, lease_ttl=60)
    await outbox.sync()        # durable now: the publisher may be told (the claimed may go out before)
    claimed = await outbox.cycle(outcomes, limits={"crm": 256}, lease_ttl=60)   # finish, then claim

One row per (event, endpoint) in `dispatcher_deliveries` (schema.py). Ordering per endpoint and
chain is kept by the `ready` flag: only the pending delivery with the lowest sequence of its
(endpoint, chain) is ready, and only ready rows are claimed; finishing it (delivered or dead)
hands the next one over: leased at once to the replica that finished it while its endpoint has room
(one write, and no claim of its own), else made ready. A claimed row is not ready while its lease
runs (a retry, a release or the reaper readies it again), so the claim query never walks over
deliveries in flight.
Publish and finish lock the chain's row (Postgres `FOR UPDATE`), so a publish racing a finish in
another replica cannot leave a chain without a ready head. Claims take a lease (owner, until);
Postgres claims with `FOR UPDATE SKIP LOCKED`; an expired lease makes the row claimable again.
The publish transaction is publishing.py's. What operators do with the queue (list, redeliver, prune) is
the ledger's (ledger.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence

from tcxhooks.platform.store import Store, Work, execute, executemany, fetchall

from .publishing import publish_work
from .records import Claimed, NewEvent, Outcome, Published, Routing
from .schema import DEAD, DELIVERED, MIGRATIONS, PENDING
from .sql import chunks, insert, marks, one_of

# A publish of this many events or more runs in the store's thread (SQLite steps it without the GIL,
# beside the loop that sends the webhooks); a smaller one, the latency path of a lone event, runs on the
# loop when the write lock is free: no thread hop before its first attempt leaves.
BESIDE_LOOP_FROM = 4


class Outbox:
    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.owner = owner
        self.postgres = store.dialect == "postgres"

    async def migrate(self) -> None:
        await self.store.migrate("dispatcher", MIGRATIONS)

    # --- publish -------------------------------------------------------------------------

    async def publish(
        self,
        batch: Sequence[NewEvent],
        routing: Routing,
        claim: Mapping[str, int] | None = None,
        lease_ttl: float = 0.0,
    ) -> tuple[list[Published], list[Claimed]]:
        """Stores a batch of events and their deliveries in one transaction (idempotent on event_id).

        The commit survives kill -9 when this returns, not yet a power cut: the claimed deliveries may go
        out at once, but no one may be told the events are stored before `sync()` has returned.
        `routing`: which endpoints get each event (Routing).
        `claim`: up to this many deliveries per endpoint that are their chain's head are stored
        already claimed (leased for `lease_ttl`) and returned, so the caller sends them without a
        claim transaction of its own.
        An endpoint in `routing.refusing` (disabled, or its backlog full) gets no delivery, but the
        event still takes its next endpoint_sequence: the gap tells the receiver it missed one.
        A batch of BESIDE_LOOP_FROM events or more runs beside the event loop (sqlite.py)."""
        work = publish_work(batch, routing, dict(claim or {}), lease_ttl, self.owner, self.postgres)
        return await self.store.run(work, durable=False, beside_loop=len(batch) >= BESIDE_LOOP_FROM)

    async def sync(self) -> None:
        """Makes every publish before the call durable (on disk: a power cut cannot take it back)."""
        await self.store.sync()

    # --- delivery cycle ------------------------------------------------------------------

    async def cycle(self, outcomes: Sequence[Outcome], limits: Mapping[str, int], lease_ttl: float) -> list[Claimed]:
        """Records finished attempts, hands each finished chain's next delivery over, and claims due
        deliveries: up to `limits[endpoint]` per endpoint, those handed over included (so a slow
        endpoint cannot take every claim).

        Not durable (platform/store.py): a kill -9 loses none of it. A power cut may lose the newest
        cycles, never one before another: their deliveries are pending again and go out again after the
        restart, in order, with the same webhook-id (the duplicate the promise allows, docs/webhooks.md);
        claims lost with them were leases nobody else holds. The events themselves were stored durably at
        publish, before the monitor was told.

        Beside the event loop (SQLite: in the store's thread): under load the loop, which sends every
        webhook, is the limit. A first attempt waits for its publish, not for a cycle (only an event
        published while its chain's previous webhook is in flight waits for the cycle that records it)."""
        return await self.store.run(self._cycle(outcomes, limits, lease_ttl), durable=False, beside_loop=True)

    def _cycle(self, outcomes: Sequence[Outcome], limits: Mapping[str, int], lease_ttl: float) -> Work[list[Claimed]]:
        now = time.time()
        until = now + lease_ttl
        room = dict(limits)
        taken: list[int] = []
        if outcomes:
            taken += yield from self._finish(outcomes, now, room, until)
        for endpoint, limit in room.items():
            if limit > 0:
                taken += yield from self._claim(limit, endpoint, now, until)
        return (yield from self._claimed(taken))

    def _finish(self, outcomes: Sequence[Outcome], now: float, room: dict[str, int], until: float) -> Work[list[int]]:
        """Records the outcomes, then hands each finished chain's next delivery over (`_hand_over`):
        returns the ids leased to this owner."""
        finished = sorted(
            {(o.delivery.endpoint, o.delivery.chain) for o in outcomes if o.result in ("delivered", "dead")}
        )
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
            yield execute(
                f"UPDATE dispatcher_deliveries SET {assignments}, lease_until = 0, lease_owner = '' "
                f"WHERE {guard} {chosen}",
                (*stamp, owner, *params),
            )
        retries = [(o.next_attempt_at, owner, o.delivery.id) for o in outcomes if o.result == "retry"]
        if retries:
            yield executemany(
                "UPDATE dispatcher_deliveries SET attempts = attempts + 1, failures = failures + 1, "
                f"next_attempt_at = ?, ready = 1, lease_until = 0, lease_owner = '' WHERE {guard} id = ?",
                retries,
            )
        yield from insert(
            "dispatcher_attempts (delivery_id, number, at, http_status, latency, response, error)",
            [
                (
                    o.delivery.id,
                    o.attempt.number,
                    o.attempt.at,
                    o.attempt.http_status,
                    o.attempt.latency,
                    o.attempt.response,
                    o.attempt.error,
                )
                for o in outcomes
                if o.attempt is not None
            ],
            postgres=self.postgres,
        )
        if not finished:
            return []
        return (yield from self._hand_over(finished, now, room, until))

    def _hand_over(
        self, finished: list[tuple[str, str]], now: float, room: dict[str, int], until: float
    ) -> Work[list[int]]:
        """The next pending delivery of each finished (endpoint, chain) is leased to this owner while
        `room[endpoint]` lasts and it is due and unleased; any other becomes ready for a claim. Leasing
        it here writes the row once, where readying it and claiming it later wrote it twice (on
        Postgres a new version of the row in every index each time). Returns the leased ids."""
        columns = "{0}.id, {0}.endpoint, {0}.ready, {0}.lease_until, {0}.next_attempt_at"
        next_of_pair = (
            f"FROM dispatcher_deliveries p WHERE p.endpoint = h.endpoint AND p.chain = h.chain AND "
            f"p.status = {PENDING} ORDER BY p.sequence LIMIT 1"
        )
        if self.postgres:  # a lateral join finds each pair's next delivery once
            pairs = ", ".join(["(?, ?)"] * len(finished))
            rows = yield fetchall(
                f"SELECT d.* FROM (VALUES {pairs}) AS h (endpoint, chain) CROSS JOIN LATERAL "
                f"(SELECT {columns.format('p')} {next_of_pair}) d",
                [value for pair in finished for value in pair],
            )
        else:  # SQLite has no lateral join: the ids first, then their rows
            rows = yield fetchall(
                f"SELECT {columns.format('d')} FROM dispatcher_deliveries d WHERE d.id IN (SELECT (SELECT p.id "
                f"{next_of_pair}) "
                "FROM (SELECT json_extract(value, '$[0]') AS endpoint, json_extract(value, '$[1]') AS chain "
                "FROM json_each(?)) h)",
                [json.dumps(finished)],
            )
        handed: list[int] = []
        readied: list[int] = []
        for delivery_id, endpoint, ready, lease_until, next_attempt_at in rows:
            state = int(ready)
            if state == 0 and lease_until <= now and next_attempt_at <= now and room.get(endpoint, 0) > 0:
                room[endpoint] -= 1
                handed.append(int(delivery_id))
            elif state != 1:
                readied.append(int(delivery_id))
        if readied:
            chosen, values = one_of("id", readied, self.postgres)
            yield execute(f"UPDATE dispatcher_deliveries SET ready = 1 WHERE {chosen}", values)
        if not handed:
            return []
        # guarded as a claim is: on Postgres a row the reaper readied meanwhile may be another's by now
        chosen, values = one_of("id", handed, self.postgres)
        leased = yield fetchall(
            "UPDATE dispatcher_deliveries SET lease_until = ?, lease_owner = ?, ready = 0 "
            f"WHERE status = {PENDING} AND ready = 0 AND lease_until <= ? AND {chosen} RETURNING id",
            (until, self.owner, now, *values),
        )
        return [int(r[0]) for r in leased]

    def _claim(self, limit: int, endpoint: str, now: float, until: float) -> Work[list[int]]:
        where = f"status = {PENDING} AND ready = 1 AND endpoint = ? AND next_attempt_at <= ? AND lease_until <= ?"
        params = (endpoint, now, now)
        if self.postgres:
            rows = yield fetchall(
                "UPDATE dispatcher_deliveries SET lease_until = ?, lease_owner = ?, ready = 0 WHERE id IN ("
                f"SELECT id FROM dispatcher_deliveries WHERE {where} ORDER BY next_attempt_at LIMIT ? "
                "FOR UPDATE SKIP LOCKED) RETURNING id",
                (until, self.owner, *params, limit),
            )
            return [int(r[0]) for r in rows]
        rows = yield fetchall(
            f"SELECT id FROM dispatcher_deliveries WHERE {where} ORDER BY next_attempt_at LIMIT ?", (*params, limit)
        )
        ids = [int(r[0]) for r in rows]
        if ids:
            chosen, values = one_of("id", ids, self.postgres)
            yield execute(
                f"UPDATE dispatcher_deliveries SET lease_until = ?, lease_owner = ?, ready = 0 WHERE {chosen}",
                (until, self.owner, *values),
            )
        return ids

    def _claimed(self, ids: list[int]) -> Work[list[Claimed]]:
        """The deliveries `ids` (leased by this cycle) with what sending them needs."""
        if not ids:
            return []
        chosen, values = one_of("d.id", ids, self.postgres)
        claimed = yield fetchall(
            "SELECT d.id, d.endpoint, d.event_id, d.chain, d.sequence, d.attempts, d.failures, d.created_at, "
            "e.payload, e.message_id, d.endpoint_sequence FROM dispatcher_deliveries d JOIN dispatcher_events e "
            f"ON e.event_id = d.event_id WHERE {chosen} ORDER BY d.next_attempt_at, d.id",
            values,
        )
        return [
            Claimed(
                int(r[0]),
                str(r[1]),
                str(r[2]),
                str(r[3]),
                int(r[4]),
                int(r[5]),
                int(r[6]),
                float(r[7]),
                bytes(r[8]),
                str(r[9]) or f"msg_{r[0]}",
                int(r[10]),
            )
            for r in claimed
        ]

    async def renew(self, ids: Sequence[int], lease_ttl: float) -> None:
        """Extends the lease of deliveries this replica still holds."""
        until = time.time() + lease_ttl
        async with self.store.transaction() as tx:
            for chunk in chunks(list(ids)):
                await tx.execute(
                    f"UPDATE dispatcher_deliveries SET lease_until = ? WHERE lease_owner = ? "
                    f"AND id IN ({marks(len(chunk))})",
                    (until, self.owner, *chunk),
                )

    async def release_all(self) -> int:
        """SQLite only (one dispatcher per file): leases of a previous, killed process are void."""
        return int(
            await self.store.execute(
                f"UPDATE dispatcher_deliveries SET ready = 1, lease_until = 0, lease_owner = '' "
                f"WHERE status = {PENDING} AND lease_until > 0"
            )
        )

    async def reap(self) -> int:
        """Clears expired leases (their replica died or stalled); returns how many."""
        now = time.time()
        return int(
            await self.store.execute(
                f"UPDATE dispatcher_deliveries SET ready = 1, lease_until = 0, lease_owner = '' "
                f"WHERE status = {PENDING} AND lease_until > 0 AND lease_until <= ?",
                (now,),
            )
        )
