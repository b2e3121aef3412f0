"""The outbox as operators see it: listing deliveries, redelivering, pruning, endpoint states and
backlog figures. The hot path (publish, claim, finish) is the outbox's (outbox.py).

    ledger = Ledger(store)
    rows = await ledger.list_deliveries(status=DEAD, call_id="", endpoint="crm", limit=100, with_attempts=True)
    count = await ledger.redeliver(ids=[], since=None, dead=True)
    removed = await ledger.prune(keep_seconds=30 * 86400)
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from tcxhooks.platform.store import Store, Work, execute, fetchall

from .records import AttemptRecord, DeliveryRow, EndpointRow
from .schema import DEAD, DELIVERED, PENDING
from .sql import marks, one_of

_DELIVERY_COLUMNS = (
    "d.id, d.event_id, d.endpoint, d.chain, d.sequence, d.event_type, d.call_id, d.status, "
    "d.attempts, d.created_at, d.next_attempt_at, e.message_id, d.endpoint_sequence"
)
# `ready` of deliveries a redelivery chose, until the same transaction knows their chain's head
_CHOSEN = 2


class Ledger:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.postgres = store.dialect == "postgres"

    async def list_deliveries(
        self, status: int, call_id: str, endpoint: str, limit: int, with_attempts: bool
    ) -> list[DeliveryRow]:
        where: list[str] = ["1 = 1"]
        params: list[object] = []
        if status:
            where.append("d.status = ?")
            params.append(status)
        if call_id:
            where.append("(d.call_id = ? OR d.chain = ?)")
            params += [call_id, call_id]
        if endpoint:
            where.append("d.endpoint = ?")
            params.append(endpoint)
        rows = await self.store.fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM dispatcher_deliveries d JOIN dispatcher_events e "
            f"ON e.event_id = d.event_id WHERE {' AND '.join(where)} ORDER BY d.id DESC LIMIT ?",
            (*params, limit),
        )
        # rows stored before webhook-ids were kept have none: they keep `msg_<delivery id>` (outbox.py)
        result = [
            DeliveryRow(
                int(r[0]),
                str(r[1]),
                str(r[2]),
                str(r[3]),
                int(r[4]),
                str(r[5]),
                str(r[6]),
                int(r[7]),
                int(r[8]),
                float(r[9]),
                float(r[10]),
                str(r[11]) or f"msg_{r[0]}",
                int(r[12]),
            )
            for r in rows
        ]
        if with_attempts and result:
            logs: dict[int, list[AttemptRecord]] = {}
            ids = [row.id for row in result]
            attempt_rows = await self.store.fetchall(
                "SELECT delivery_id, number, at, http_status, latency, response, error FROM dispatcher_attempts "
                f"WHERE delivery_id IN ({marks(len(ids))}) ORDER BY id",
                ids,
            )
            for a in attempt_rows:
                logs.setdefault(int(a[0]), []).append(
                    AttemptRecord(int(a[1]), float(a[2]), int(a[3]), float(a[4]), str(a[5]), str(a[6]))
                )
            for row in result:
                row.attempt_log.extend(logs.get(row.id, []))
        return list(reversed(result))

    async def redeliver(
        self, ids: Sequence[int], since: float | None, dead: bool, message_ids: Sequence[str] = ()
    ) -> int:
        """Queues deliveries again (new attempts, same webhook-id); returns how many. Chosen: the
        deliveries `ids`, those of the events `message_ids` (webhook-ids), those created `since`,
        and the `dead` ones.

        Set-based, whatever the number chosen: the chosen rows become pending in one UPDATE, then
        each of their (endpoint, chain) pairs gets its head back (the lowest pending sequence)."""
        return await self.store.run(self._redeliver(ids, since, dead, message_ids))

    def _redeliver(self, ids: Sequence[int], since: float | None, dead: bool, message_ids: Sequence[str]) -> Work[int]:
        chosen: list[str] = []
        params: list[object] = []
        if ids:
            clause, values = one_of("id", list(ids), self.postgres)
            chosen.append(clause)
            params += values
        if message_ids:
            clause, values = one_of("message_id", list(message_ids), self.postgres)
            chosen.append(f"event_id IN (SELECT event_id FROM dispatcher_events WHERE {clause})")
            params += values
        if since is not None:
            chosen.append("created_at >= ?")
            params.append(since)
        if dead:
            chosen.append(f"status = {DEAD}")
        if not chosen:
            return 0
        where = " OR ".join(chosen)
        if self.postgres:  # publish and finish lock their chains too: none of them races the heads below
            yield fetchall(
                "SELECT chain FROM dispatcher_chains WHERE chain IN (SELECT chain FROM "
                f"dispatcher_deliveries WHERE {where}) ORDER BY chain FOR UPDATE",
                params,
            )
        count = yield execute(
            f"UPDATE dispatcher_deliveries SET status = {PENDING}, ready = {_CHOSEN}, failures = 0, "
            f"next_attempt_at = ?, finished_at = NULL WHERE {where}",
            (time.time(), *params),
        )
        same_pair = (
            "m.chain = dispatcher_deliveries.chain AND m.endpoint = dispatcher_deliveries.endpoint AND "
            f"m.status = {PENDING}"
        )
        # every waiting delivery of a chosen pair joins the chosen (only adds marks: a statement
        # that sees its own changes, as SQLite's does, reads the same EXISTS all along) ...
        yield execute(
            f"UPDATE dispatcher_deliveries SET ready = {_CHOSEN} WHERE status = {PENDING} AND "
            f"lease_owner = '' AND ready <> {_CHOSEN} AND EXISTS (SELECT 1 FROM dispatcher_deliveries m "
            f"WHERE {same_pair} AND m.ready = {_CHOSEN})"
        )
        # ... then only the lowest pending sequence of each pair is ready (none while it is in flight)
        yield execute(
            f"UPDATE dispatcher_deliveries SET ready = CASE WHEN lease_owner = '' AND sequence = "
            f"(SELECT MIN(m.sequence) FROM dispatcher_deliveries m WHERE {same_pair}) THEN 1 ELSE 0 END "
            f"WHERE status = {PENDING} AND ready = {_CHOSEN}"
        )
        return int(count)

    async def prune(self, keep_seconds: float, keep_dead_seconds: float, chunk: int = 5000) -> dict[int, int]:
        """Removes delivered deliveries finished more than `keep_seconds` ago and dead ones more than
        `keep_dead_seconds` ago, with their attempts, then events and chains nothing refers to;
        returns how many of each status went."""
        now = time.time()
        removed = {DELIVERED: 0, DEAD: 0}
        for status, cutoff in ((DELIVERED, now - keep_seconds), (DEAD, now - keep_dead_seconds)):
            while True:
                async with self.store.transaction() as tx:
                    rows = await tx.fetchall(
                        f"SELECT id FROM dispatcher_deliveries WHERE status = {status} AND finished_at < ? LIMIT ?",
                        (cutoff, chunk),
                    )
                    ids = [int(r[0]) for r in rows]
                    if ids:
                        chosen, params = one_of("delivery_id", ids, self.postgres)
                        await tx.execute(f"DELETE FROM dispatcher_attempts WHERE {chosen}", params)
                        chosen, params = one_of("id", ids, self.postgres)
                        await tx.execute(f"DELETE FROM dispatcher_deliveries WHERE {chosen}", params)
                removed[status] += len(ids)
                if len(ids) < chunk:
                    break
        cutoff = now - min(keep_seconds, keep_dead_seconds)
        async with self.store.transaction() as tx:
            await tx.execute(
                "DELETE FROM dispatcher_events WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM "
                "dispatcher_deliveries d WHERE d.event_id = dispatcher_events.event_id)",
                (cutoff,),
            )
            await tx.execute(
                "DELETE FROM dispatcher_chains WHERE updated_at < ? AND NOT EXISTS (SELECT 1 FROM "
                "dispatcher_events e WHERE e.chain = dispatcher_chains.chain)",
                (cutoff,),
            )
        return removed

    async def endpoint_rows(self) -> dict[str, EndpointRow]:
        rows = await self.store.fetchall("SELECT name, state, failures, last_error FROM dispatcher_endpoints")
        return {str(r[0]): EndpointRow(str(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in rows}

    async def save_endpoint(self, name: str, state: int, failures: int, last_error: str) -> None:
        await self.store.execute(
            "INSERT INTO dispatcher_endpoints (name, state, failures, last_error, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET state = excluded.state, failures = excluded.failures, "
            "last_error = excluded.last_error, updated_at = excluded.updated_at",
            (name, state, failures, last_error, time.time()),
        )

    async def pending_stats(self) -> dict[str, tuple[int, float]]:
        """endpoint → (pending deliveries, creation time of the oldest)."""
        rows = await self.store.fetchall(
            f"SELECT endpoint, COUNT(*), MIN(created_at) FROM dispatcher_deliveries "
            f"WHERE status = {PENDING} GROUP BY endpoint"
        )
        return {str(r[0]): (int(r[1]), float(r[2])) for r in rows}
