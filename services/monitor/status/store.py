"""The last complete directory view, persisted (table `monitor_status_view`, one row per PBX).

The baseline of every diff: a fresh install has none (first start is silent), a restart diffs
against it (changes during the downtime are sent once). A new view and the events of its diff are
written in one transaction (`monitor_status_outbox`), then published and deleted: a crash or a
dispatcher outage in between re-publishes the same events (same ids) and never loses or re-derives them.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Sequence

from tcxhooks.platform.store import Migration, Store
from tcxhooks.v1 import events_pb2

from .view import DirectoryView

MIGRATIONS = [
    Migration(
        1,
        "CREATE TABLE IF NOT EXISTS monitor_status_view ("
        " pbx TEXT PRIMARY KEY, view_id TEXT NOT NULL, body TEXT NOT NULL,"
        " saved_at DOUBLE PRECISION NOT NULL);\n"
        "CREATE TABLE IF NOT EXISTS monitor_status_outbox ("
        " pbx TEXT NOT NULL, seq INTEGER NOT NULL, event_id TEXT NOT NULL, body TEXT NOT NULL,"
        " PRIMARY KEY (pbx, seq))",
    ),
]


class StatusStoreError(Exception):
    """The persisted view cannot be read back."""


class StatusStore:
    def __init__(self, store: Store, pbx: str) -> None:
        self._store = store
        self._pbx = pbx or "default"

    async def migrate(self) -> None:
        await self._store.migrate("monitor_status", MIGRATIONS)

    async def load(self) -> DirectoryView | None:
        row = await self._store.fetchone("SELECT view_id, body FROM monitor_status_view WHERE pbx = ?", (self._pbx,))
        if row is None:
            return None
        try:
            return DirectoryView.from_json(json.loads(row[1]), str(row[0]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StatusStoreError(f"stored directory view of {self._pbx} is unreadable: {exc}") from exc

    async def save(self, view: DirectoryView, events: Sequence[events_pb2.Event] = ()) -> DirectoryView:
        """Stores `view` as the new baseline and `events` as pending; returns the view with its `view_id`."""
        view_id = uuid.uuid4().hex
        body = json.dumps(view.to_json(), separators=(",", ":"), ensure_ascii=False)
        async with self._store.transaction() as tx:
            await tx.execute(
                "INSERT INTO monitor_status_view (pbx, view_id, body, saved_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (pbx) DO UPDATE SET view_id = excluded.view_id, body = excluded.body,"
                " saved_at = excluded.saved_at",
                (self._pbx, view_id, body, time.time()),
            )
            if events:
                row = await tx.fetchone("SELECT MAX(seq) FROM monitor_status_outbox WHERE pbx = ?", (self._pbx,))
                first = int(row[0]) + 1 if row and row[0] is not None else 1
                await tx.executemany(
                    "INSERT INTO monitor_status_outbox (pbx, seq, event_id, body) VALUES (?, ?, ?, ?)",
                    [
                        (self._pbx, first + i, e.event_id, base64.b64encode(e.SerializeToString()).decode())
                        for i, e in enumerate(events)
                    ],
                )
        return DirectoryView(view.extensions, view.queues, view.queue_logins_known, view_id)

    async def pending(self) -> list[tuple[int, events_pb2.Event]]:
        """Events stored with a view but not yet handed to the dispatcher, oldest first."""
        rows = await self._store.fetchall(
            "SELECT seq, body FROM monitor_status_outbox WHERE pbx = ? ORDER BY seq", (self._pbx,)
        )
        out = []
        for seq, body in rows:
            event = events_pb2.Event()
            event.ParseFromString(base64.b64decode(body))
            out.append((int(seq), event))
        return out

    async def done(self, through: int) -> None:
        """Forgets the pending events up to sequence `through` (the dispatcher has them)."""
        await self._store.execute("DELETE FROM monitor_status_outbox WHERE pbx = ? AND seq <= ?", (self._pbx, through))
