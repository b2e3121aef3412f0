"""Background care of the outbox: endpoint states, queue gauges, lease reaper, pruning.

    app.spawn(housekeeping(outbox, ledger, endpoints, 30, 30, 60.0, app.stopping, worker.wake), "housekeeping")

Every few seconds: reload endpoint states (another replica may have seen a 410), set the queue
depth / oldest pending gauges. Every half lease: clear expired leases (a replica died mid-delivery).
Every hour (and at start): remove delivered deliveries older than `keep_days` and dead ones older
than `keep_dead_days`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from tcxhooks.platform.waiting import sleep_or_stop

from .endpoints import Endpoints
from .ledger import Ledger
from .metrics import LEASES_EXPIRED, OLDEST_PENDING, PRUNED, QUEUE_DEPTH
from .outbox import Outbox
from .schema import DEAD, DELIVERED

log = logging.getLogger(__name__)
PRUNE_EVERY = 3600.0


async def _step(ledger: Ledger, endpoints: Endpoints) -> None:
    await endpoints.load()
    stats = await ledger.pending_stats()
    now = time.time()
    for endpoint in endpoints:
        pending, oldest = stats.get(endpoint.name, (0, now))
        endpoint.backlog = pending
        QUEUE_DEPTH.labels(endpoint.name).set(pending)
        OLDEST_PENDING.labels(endpoint.name).set(max(0.0, now - oldest) if pending else 0.0)


async def housekeeping(
    outbox: Outbox,
    ledger: Ledger,
    endpoints: Endpoints,
    keep_days: int,
    keep_dead_days: int,
    lease_ttl: float,
    stopping: asyncio.Event,
    on_reap: Callable[[], None],
    interval: float = 5.0,
) -> None:
    # -inf, not 0: monotonic time starts near 0 at boot, and the first round must reap and prune
    last_reap = last_prune = float("-inf")
    while not stopping.is_set():
        try:
            await _step(ledger, endpoints)
            if time.monotonic() - last_reap >= lease_ttl / 2:
                last_reap = time.monotonic()
                reaped = await outbox.reap()
                if reaped:
                    LEASES_EXPIRED.inc(reaped)
                    log.warning(
                        "%d deliveries had an expired lease (a replica stopped mid-delivery); queued again", reaped
                    )
                    on_reap()
            if time.monotonic() - last_prune >= PRUNE_EVERY:
                last_prune = time.monotonic()
                removed = await ledger.prune(keep_days * 86400.0, keep_dead_days * 86400.0)
                PRUNED.labels("delivered").inc(removed[DELIVERED])
                PRUNED.labels("dead").inc(removed[DEAD])
                if removed[DELIVERED] or removed[DEAD]:
                    log.info(
                        "pruned %d delivered deliveries older than %d days and %d dead ones older than %d days",
                        removed[DELIVERED],
                        keep_days,
                        removed[DEAD],
                        keep_dead_days,
                    )
        except Exception as exc:  # the store may be briefly down; the next round tries again
            log.warning("dispatcher housekeeping failed: %s", exc)
        await sleep_or_stop(min(interval, lease_ttl / 2), stopping)
