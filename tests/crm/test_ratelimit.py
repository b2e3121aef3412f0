"""The CRM rate limiter: bursts, the sustained rate, the real-time lane, slowing down after a refusal."""

from __future__ import annotations

import asyncio

import pytest

from tcxhooks.dispatcher.crm import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_goes_out_at_once_then_one_token_per_interval() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    for _ in range(3):
        await asyncio.wait_for(limiter.acquire(), 1)  # the burst: no waiting at all
    fourth = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0.05)
    assert not fourth.done() and limiter.waiting == 1  # bucket empty, clock stands still
    clock.now += 0.5  # one token at 2/s
    await asyncio.wait_for(fourth, 2)
    await limiter.close()


async def test_realtime_requests_are_granted_before_every_waiting_log_request() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    await limiter.acquire()  # empty now
    granted: list[str] = []

    async def take(name: str, realtime: bool) -> None:
        await limiter.acquire(realtime)
        granted.append(name)

    tasks = [asyncio.ensure_future(take(name, False)) for name in ("log1", "log2", "log3")]
    await asyncio.sleep(0)
    tasks.append(asyncio.ensure_future(take("show", True)))
    await asyncio.sleep(0.05)
    assert granted == []
    for expected in (["show"], ["show", "log1"], ["show", "log1", "log2"], ["show", "log1", "log2", "log3"]):
        clock.now += 1.0
        while len(granted) < len(expected):
            await asyncio.sleep(0.01)
        assert granted == expected
    await asyncio.gather(*tasks)
    await limiter.close()


async def test_slow_down_empties_the_bucket_and_pauses() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=5, burst=10, clock=clock)
    await limiter.acquire()
    limiter.slow_down(2.0)  # the CRM said "too many" although our bucket had 9 left
    waiting = asyncio.ensure_future(limiter.acquire())
    clock.now += 1.5
    await asyncio.sleep(0.05)
    assert not waiting.done()
    clock.now += 1.0  # the pause is over and 0.5 s of refill gave 2.5 tokens
    await asyncio.wait_for(waiting, 2)
    await limiter.close()


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    await limiter.acquire()
    first = asyncio.ensure_future(limiter.acquire())
    second = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    first.cancel()
    clock.now += 1.0
    await asyncio.wait_for(second, 2)
    await limiter.close()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=5)
    with pytest.raises(ValueError):
        RateLimiter(rate=2, burst=0)
