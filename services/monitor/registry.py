"""The monitor's durable state: the call registry (chains), the outbox of events not yet handed over, and for
outage recovery the calls that finished lately and when the Call Control socket was last known good.

    registry = Registry(store); await registry.migrate()
    chains = await registry.load_chains(); rows = await registry.load_outbox()
    seqs = await registry.commit(changed_chains, finished_callids, new_rows)
    await registry.delete_outbox(seqs)
    known = await registry.known_calls(since); await registry.save_good(at); at = await registry.load_good()

Chains and the events they produced are written in one transaction, so after a kill -9 the
restarted monitor holds exactly the state whose events were queued: ids stay the same and no event
is lost or produced twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tcxhooks.platform.store import Migration, Store, Work, executemany, fetchall

from .callgraph import Chain

_V2 = (
    "DROP TABLE IF EXISTS monitor_chains;\n"
    "DROP TABLE IF EXISTS monitor_outbox;\n"
    "CREATE TABLE monitor_chains ("
    " pbx TEXT NOT NULL, callid BIGINT NOT NULL, data TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL,"
    " PRIMARY KEY (pbx, callid));\n"
    "CREATE TABLE monitor_outbox ("
    " seq {serial} PRIMARY KEY, pbx TEXT NOT NULL, chain TEXT NOT NULL, target TEXT NOT NULL,"
    " payload {blob} NOT NULL, needs TEXT NOT NULL DEFAULT '', created_at DOUBLE PRECISION NOT NULL);\n"
    "CREATE INDEX monitor_outbox_pbx ON monitor_outbox (pbx, seq)"
)
_V3 = (
    "CREATE TABLE monitor_known ("
    " pbx TEXT NOT NULL, callid BIGINT NOT NULL, finished_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (pbx, callid));\n"
    "CREATE INDEX monitor_known_finished ON monitor_known (pbx, finished_at);\n"
    "CREATE TABLE monitor_link (pbx TEXT PRIMARY KEY, good_at DOUBLE PRECISION NOT NULL)"
)
MIGRATIONS = [
    # v1 kept the registry of one PBX only; v2 keys it by PBX (several monitors may share one store).
    Migration(
        1,
        "CREATE TABLE IF NOT EXISTS monitor_chains ("
        " callid BIGINT PRIMARY KEY, data TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL);\n"
        "CREATE TABLE IF NOT EXISTS monitor_outbox ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, chain TEXT NOT NULL, target TEXT NOT NULL,"
        " payload BLOB NOT NULL, needs TEXT NOT NULL DEFAULT '', created_at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE IF NOT EXISTS monitor_chains ("
        " callid BIGINT PRIMARY KEY, data TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL);\n"
        "CREATE TABLE IF NOT EXISTS monitor_outbox ("
        " seq BIGSERIAL PRIMARY KEY, chain TEXT NOT NULL, target TEXT NOT NULL,"
        " payload BYTEA NOT NULL, needs TEXT NOT NULL DEFAULT '', created_at DOUBLE PRECISION NOT NULL)",
    ),
    Migration(
        2,
        _V2.format(serial="INTEGER", blob="BLOB").replace("INTEGER PRIMARY KEY,", "INTEGER PRIMARY KEY AUTOINCREMENT,"),
        _V2.format(serial="BIGSERIAL", blob="BYTEA"),
    ),
    # v3: what outage recovery needs to tell a call the monitor saw from one it missed, across restarts.
    Migration(3, _V3, _V3),
]


@dataclass
class OutRow:
    """One hand-over still due: `target` "dispatcher" (an Event) or "media" (a RecordingsDueRequest)."""

    chain: str
    target: str
    payload: bytes
    needs: str = ""  # comma list: did, callback
    seq: int = 0
    message: Any = None  # the decoded payload while in memory (saves decoding it again)


class Registry:
    """The rows of one PBX (`pbx` = its URL) in a store that several monitors may share."""

    def __init__(self, store: Store, pbx: str) -> None:
        self.store = store
        self.pbx = pbx

    async def migrate(self) -> None:
        await self.store.migrate("monitor", MIGRATIONS)

    async def load_chains(self) -> list[Chain]:
        rows = await self.store.fetchall("SELECT data FROM monitor_chains WHERE pbx = ? ORDER BY callid", (self.pbx,))
        return [Chain.from_dict(json.loads(row[0])) for row in rows]

    async def load_outbox(self) -> list[OutRow]:
        rows = await self.store.fetchall(
            "SELECT seq, chain, target, payload, needs FROM monitor_outbox WHERE pbx = ? ORDER BY seq", (self.pbx,)
        )
        return [OutRow(str(r[1]), str(r[2]), bytes(r[3]), str(r[4]), int(r[0])) for r in rows]

    async def commit(self, changed: Sequence[tuple[int, str]], finished: Sequence[int], rows: Sequence[OutRow]) -> None:
        """Writes chain states (callid, JSON), forgets finished chains, appends rows (their `seq` is filled in).

        Not durable (platform/store.py), since it sits between a PBX change and its Publish: a kill -9
        loses none of it. A power cut may lose the newest commits, whose events the dispatcher had not
        yet acknowledged: an acknowledgement comes from the dispatcher's durable commit, which on a
        shared store writes these commits to disk with it, and the publisher deletes a row only after
        it. What is lost is the state of the last moments before the cut; on restart the monitor
        resyncs with the PBX and recovers the calls it did not see end from the call log, as after any
        outage (`[pbx] recover_outages`)."""
        await self.store.run(self._commit(changed, finished, rows), durable=False)

    def _commit(
        self, changed: Sequence[tuple[int, str]], finished: Sequence[int], rows: Sequence[OutRow]
    ) -> Work[None]:
        # One transaction in one hop to the store (it sits between a PBX change and its Publish).
        now = time.time()
        if changed:
            yield executemany(
                "INSERT INTO monitor_chains (pbx, callid, data, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (pbx, callid) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                [(self.pbx, callid, data, now) for callid, data in changed],
            )
        if finished:
            yield executemany(
                "DELETE FROM monitor_chains WHERE pbx = ? AND callid = ?", [(self.pbx, c) for c in finished]
            )
            yield executemany(
                "INSERT INTO monitor_known (pbx, callid, finished_at) VALUES (?, ?, ?)"
                " ON CONFLICT (pbx, callid) DO UPDATE SET finished_at = excluded.finished_at",
                [(self.pbx, c, now) for c in finished],
            )
        if rows:
            # One statement for the batch; its rows are this PBX's newest (one writer per PBX: the lease).
            yield executemany(
                "INSERT INTO monitor_outbox (pbx, chain, target, payload, needs, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(self.pbx, row.chain, row.target, row.payload, row.needs, now) for row in rows],
            )
            found = yield fetchall(
                "SELECT seq FROM monitor_outbox WHERE pbx = ? ORDER BY seq DESC LIMIT ?", (self.pbx, len(rows))
            )
            for row, (seq,) in zip(rows, reversed(found), strict=False):
                row.seq = int(seq)

    async def delete_outbox(self, seqs: Sequence[int]) -> None:
        if seqs:
            async with self.store.transaction() as tx:
                await tx.executemany("DELETE FROM monitor_outbox WHERE seq = ?", [(s,) for s in seqs])

    async def known_calls(self, since: float) -> set[int]:
        """Call numbers of the chains that finished at or after `since` (committed with `commit`)."""
        rows = await self.store.fetchall(
            "SELECT callid FROM monitor_known WHERE pbx = ? AND finished_at >= ?", (self.pbx, since)
        )
        return {int(row[0]) for row in rows}

    async def forget_known(self, before: float) -> None:
        await self.store.execute("DELETE FROM monitor_known WHERE pbx = ? AND finished_at < ?", (self.pbx, before))

    async def load_good(self) -> float | None:
        """When the Call Control socket was last known good (None: never, e.g. a fresh store)."""
        row = await self.store.fetchone("SELECT good_at FROM monitor_link WHERE pbx = ?", (self.pbx,))
        return float(row[0]) if row is not None else None

    async def save_good(self, at: float) -> None:
        await self.store.execute(
            "INSERT INTO monitor_link (pbx, good_at) VALUES (?, ?)"
            " ON CONFLICT (pbx) DO UPDATE SET good_at = excluded.good_at",
            (self.pbx, at),
        )
