"""Waiting in background loops: a pause that ends early when the service stops (or is woken).

while not stopping.is_set():
    do_work()
    await sleep_or_stop(5.0, stopping)            # True: stopping was set, False: 5 s passed
    await sleep_or_stop(poll, stopping, wake)     # or a wake-up event, whichever comes first
"""

from __future__ import annotations

import asyncio
import contextlib


async def sleep_or_stop(seconds: float, *events: asyncio.Event) -> bool:
    """Waits `seconds`, or until one of `events` is set; True when an event ended the wait."""
    seconds = max(seconds, 0.0)
    if any(event.is_set() for event in events):
        return True
    if not events:
        await asyncio.sleep(seconds)
        return False
    if len(events) == 1:  # the common case, without the extra task of asyncio.wait
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(events[0].wait(), seconds)
        return events[0].is_set()
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)
