"""Handing work to a peer service until it acknowledges: the publisher-with-retry of every service.

    reply = await until_acknowledged(lambda: stub.Publish(request, timeout=15), "dispatcher Publish", stopping)
    if reply is None:
        ...   # the service is stopping: the work stays in the store and is handed on after the restart

A failed call (the peer is down, restarting, overloaded, or refuses for now) is tried again after
`first` seconds, then twice as long each time up to `most`, with ±20 % jitter so
replicas do not retry in step. Each failure is logged and passed to `on_failure` (where a service
records it for operators, e.g. in the job's error column). The receivers store each event once
(by its id), so a repeat after an unanswered attempt is harmless. A request the peer finds invalid
(INVALID_ARGUMENT: it would refuse it again, e.g. an event kind an older peer does not know) raises
`Refused` instead: retrying it for ever would hold back everything queued behind it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import grpc

from .waiting import sleep_or_stop

log = logging.getLogger(__name__)

T = TypeVar("T")

PERMANENT = frozenset({grpc.StatusCode.INVALID_ARGUMENT})


class Refused(Exception):
    """The peer refused the request for good; str() names the call and the peer's reason."""


def backoff(attempt: int, first: float, most: float) -> float:
    """The pause after the `attempt`-th failure (1, 2, …): first·2^(attempt-1), at most `most`, ±20 %."""
    return min(most, first * 2.0 ** min(max(attempt - 1, 0), 30)) * random.uniform(0.8, 1.2)


def rpc_error(exc: grpc.aio.AioRpcError) -> str:
    """A gRPC error as one line: `UNAVAILABLE connection refused`."""
    return f"{exc.code().name} {exc.details() or ''}".strip()


async def until_acknowledged(
    send: Callable[[], Awaitable[T]],
    what: str,
    stopping: asyncio.Event,
    *,
    first: float = 0.5,
    most: float = 30.0,
    on_failure: Callable[[str], Awaitable[None]] | None = None,
    log_extra: Mapping[str, Any] | None = None,
) -> T | None:
    """`send()`'s answer once a call succeeds; None when `stopping` is set first; Refused when the peer
    refuses the request for good."""
    attempt = 0
    while not stopping.is_set():
        try:
            return await send()
        except grpc.aio.AioRpcError as exc:
            if exc.code() in PERMANENT:
                raise Refused(f"{what} refused: {rpc_error(exc)}") from None
            attempt += 1
            delay = backoff(attempt, first, most)
            problem = f"{what} failed: {rpc_error(exc)}"
            log.warning("%s; retrying in %.1f s", problem, delay, extra={**(log_extra or {}), "attempt": attempt})
            if on_failure is not None:
                await on_failure(problem)
            if await sleep_or_stop(delay, stopping):
                break
    return None
