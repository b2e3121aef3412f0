"""sleep_or_stop: the pause of every background loop ends at once when the service stops or is woken."""

from __future__ import annotations

import asyncio

from tcxhooks.platform.waiting import sleep_or_stop


async def test_a_set_event_ends_the_pause_and_is_reported() -> None:
    stopping, wake = asyncio.Event(), asyncio.Event()
    stopping.set()
    assert await sleep_or_stop(3600, stopping) is True
    assert await sleep_or_stop(3600, wake, stopping) is True


async def test_an_event_set_while_waiting_ends_the_pause() -> None:
    for count in (1, 2):
        events = [asyncio.Event() for _ in range(count)]
        pause = asyncio.create_task(sleep_or_stop(3600, *events))
        await asyncio.sleep(0)
        assert not pause.done()
        events[-1].set()
        assert await asyncio.wait_for(pause, 10) is True


async def test_the_full_pause_reports_false_and_leaves_no_waiters() -> None:
    stopping, wake = asyncio.Event(), asyncio.Event()
    before = len(asyncio.all_tasks())
    assert await sleep_or_stop(0.01, stopping) is False
    assert await sleep_or_stop(0.01, stopping, wake) is False
    assert await sleep_or_stop(0.0) is False
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == before
