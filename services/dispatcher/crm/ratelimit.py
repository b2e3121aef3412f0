"""A CRM's request budget: a token bucket with a priority lane for real-time (screen-pop) requests.

    limiter = RateLimiter(rate=2, burst=50)        # Bitrix24: 2 requests/s, bursts of 50 (5/250 Enterprise)
    await limiter.acquire(realtime=True)           # show/hide: served before every waiting log request
    await limiter.acquire()                        # register/finish/attach: in arrival order
    limiter.slow_down(1.0)                         # the CRM said "too many": empty bucket, wait a second

Cloud CRMs meter requests with a leaky bucket (Bitrix24: a counter that grows per request, drains
`rate` per second and blocks above `burst`, docs/crm.md); a token bucket of the same size and rate
never goes over. Waiting requests are granted one token at a time, all real-time ones first.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be above 0 and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._paused_until = 0.0
        self._lanes: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())
        self._pump: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return sum(1 for lane in self._lanes for f in lane if not f.done())

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def _delay(self) -> float:
        """Seconds until a token can be taken (0: now)."""
        self._refill()
        paused = self._paused_until - self._clock()
        if paused > 0:
            return paused
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    async def acquire(self, realtime: bool = False) -> None:
        if not self.waiting and self._delay() == 0:
            self._tokens -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lanes[0 if realtime else 1].append(future)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._grant(), name="crm-rate-limiter")
        await future

    def slow_down(self, seconds: float) -> None:
        """The CRM refused a request for going over its limit: spend nothing for `seconds`, then
        refill from empty (its bucket is fuller than ours thought: other clients share it)."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def close(self) -> None:
        """Stops granting (at shutdown); requests still waiting are cancelled."""
        if self._pump is not None:
            self._pump.cancel()
        for lane in self._lanes:
            for future in lane:
                future.cancel()
            lane.clear()

    async def _grant(self) -> None:
        while True:
            for lane in self._lanes:
                while lane and lane[0].done():  # cancelled waiters
                    lane.popleft()
            waiting = [lane for lane in self._lanes if lane]
            if not waiting:
                return
            lane = waiting[0]
            delay = self._delay()
            if delay > 0:
                # short naps: a `slow_down` or a new real-time waiter is seen within a quarter second
                await asyncio.sleep(min(delay, 0.25))
                continue
            self._tokens -= 1
            lane.popleft().set_result(None)
