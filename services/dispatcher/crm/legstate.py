"""The CRM adapters' own tables in the dispatcher's store: leg state, adapter values, pending clicks.

    legs = LegStore(store)
    await legs.migrate()
    await legs.put("b24", "251125184500_698-1", {"call_id": "externalCall.1"})
    await legs.get("b24", "251125184500_698-1")        # {"call_id": "externalCall.1"}
    await legs.keys("amo", "wait:")                    # [("wait:251125184500_698-1", {...}), …]
    await legs.take("amo", "wait:251125184500_698-1")  # removed and returned once: None for a second taker
    await legs.set_value("b24", "oauth", '{"access_token": ...}')

`crm` is the adapter's [crm:NAME] name, so two adapters never share a row. Leg states and clicks
older than the dispatcher's `keep_days` are pruned by `prune`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from tcxhooks.platform.store import Migration, Store

_SCHEMA_1 = """
CREATE TABLE dispatcher_crm_legs (
  crm TEXT NOT NULL,
  leg TEXT NOT NULL,
  state TEXT NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (crm, leg)
);
CREATE INDEX dispatcher_crm_legs_updated ON dispatcher_crm_legs (updated_at);
CREATE TABLE dispatcher_crm_values (
  crm TEXT NOT NULL,
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (crm, name)
);
CREATE TABLE dispatcher_crm_clicks (
  id {serial_key},
  crm TEXT NOT NULL,
  extension TEXT NOT NULL,
  number TEXT NOT NULL,
  crm_call_id TEXT NOT NULL,
  details TEXT NOT NULL,
  chain TEXT NOT NULL DEFAULT '',
  created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX dispatcher_crm_clicks_extension ON dispatcher_crm_clicks (crm, extension, created_at)
"""

MIGRATIONS = [
    Migration(
        1,
        _SCHEMA_1.format(serial_key="INTEGER PRIMARY KEY AUTOINCREMENT"),
        _SCHEMA_1.format(serial_key="BIGSERIAL PRIMARY KEY"),
    )
]


@dataclass(frozen=True)
class Click:
    """A click-to-call the CRM asked for: `extension` calls `number`; the CRM knows the call as
    `crm_call_id`; `details` is the adapter's own JSON; `chain` is set once a call chain took it."""

    id: int
    extension: str
    number: str
    crm_call_id: str
    details: dict[str, Any]
    chain: str
    created_at: float


def digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def same_number(a: str, b: str) -> bool:
    """Two spellings of one phone number (+7 916…, 8 916…, 7916…): the last 10 digits agree."""
    da, db = digits(a), digits(b)
    return bool(da) and bool(db) and da[-10:] == db[-10:]


class LegStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def migrate(self) -> None:
        await self.store.migrate("dispatcher_crm", MIGRATIONS)

    # --- leg state --------------------------------------------------------------------------
    async def get(self, crm: str, leg: str) -> dict[str, Any] | None:
        row = await self.store.fetchone("SELECT state FROM dispatcher_crm_legs WHERE crm = ? AND leg = ?", (crm, leg))
        if row is None:
            return None
        value = json.loads(str(row[0]))
        return value if isinstance(value, dict) else None

    async def put(self, crm: str, leg: str, state: dict[str, Any]) -> None:
        await self.store.execute(
            "INSERT INTO dispatcher_crm_legs (crm, leg, state, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (crm, leg) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            (crm, leg, json.dumps(state, sort_keys=True), time.time()),
        )

    async def keys(self, crm: str, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """The leg states of `crm` whose key starts with `prefix` (an adapter's own markers)."""
        rows = await self.store.fetchall(
            "SELECT leg, state FROM dispatcher_crm_legs WHERE crm = ? AND substr(leg, 1, ?) = ? ORDER BY leg",
            (crm, len(prefix), prefix),
        )
        return [(str(leg), json.loads(str(state))) for leg, state in rows]

    async def take(self, crm: str, leg: str) -> dict[str, Any] | None:
        """Removes a leg state and returns it; None when it is gone (another replica took it)."""
        async with self.store.transaction() as tx:
            row = await tx.fetchone("SELECT state FROM dispatcher_crm_legs WHERE crm = ? AND leg = ?", (crm, leg))
            if (
                row is None
                or int(await tx.execute("DELETE FROM dispatcher_crm_legs WHERE crm = ? AND leg = ?", (crm, leg))) != 1
            ):
                return None
        value = json.loads(str(row[0]))
        return value if isinstance(value, dict) else {}

    # --- adapter values (tokens, caches) ----------------------------------------------------
    async def value(self, crm: str, name: str) -> str | None:
        row = await self.store.fetchone(
            "SELECT value FROM dispatcher_crm_values WHERE crm = ? AND name = ?", (crm, name)
        )
        return None if row is None else str(row[0])

    async def set_value(self, crm: str, name: str, value: str) -> None:
        await self.store.execute(
            "INSERT INTO dispatcher_crm_values (crm, name, value, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (crm, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (crm, name, value, time.time()),
        )

    # --- click-to-call ------------------------------------------------------------------------
    async def add_click(self, crm: str, extension: str, number: str, crm_call_id: str, details: dict[str, Any]) -> None:
        await self.store.execute(
            "INSERT INTO dispatcher_crm_clicks (crm, extension, number, crm_call_id, details, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (crm, extension, number, crm_call_id, json.dumps(details), time.time()),
        )

    async def take_click(self, crm: str, chain: str, extension: str, number: str, window: float) -> Click | None:
        """The click this call chain answers: one it took already, else the oldest open click of
        `extension` to `number` from the last `window` seconds, which the chain then takes."""
        since = time.time() - window
        async with self.store.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT id, extension, number, crm_call_id, details, chain, created_at FROM dispatcher_crm_clicks "
                "WHERE crm = ? AND (chain = ? OR (chain = '' AND extension = ? AND created_at >= ?)) "
                "ORDER BY id",
                (crm, chain, extension, since),
            )
            clicks = [
                Click(int(r[0]), str(r[1]), str(r[2]), str(r[3]), json.loads(str(r[4])), str(r[5]), float(r[6]))
                for r in rows
            ]
            taken = next((c for c in clicks if c.chain == chain), None)
            if taken is not None:
                return taken
            found = next((c for c in clicks if same_number(c.number, number)), None)
            if found is None:
                return None
            await tx.execute(
                "UPDATE dispatcher_crm_clicks SET chain = ? WHERE id = ? AND chain = ''", (chain, found.id)
            )
            return Click(
                found.id, found.extension, found.number, found.crm_call_id, found.details, chain, found.created_at
            )

    # --- housekeeping ---------------------------------------------------------------------------
    async def prune(self, older_than: float) -> int:
        """Removes leg states and clicks not touched for `older_than` seconds; returns how many."""
        cutoff = time.time() - older_than
        async with self.store.transaction() as tx:
            legs = await tx.execute("DELETE FROM dispatcher_crm_legs WHERE updated_at < ?", (cutoff,))
            clicks = await tx.execute("DELETE FROM dispatcher_crm_clicks WHERE created_at < ?", (cutoff,))
        return int(legs) + int(clicks)
