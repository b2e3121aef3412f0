"""The leg store's markers the amoCRM adapter keeps for legs waiting for their recording: listed by
prefix, and taken by exactly one taker (two dispatcher replicas never log one leg twice)."""

from __future__ import annotations

import asyncio

from tcxhooks.dispatcher.crm import LegStore


async def test_markers_are_listed_by_prefix_per_crm(legs: LegStore) -> None:
    await legs.put("amo", "wait:251125184500_698-1", {"until": 1.0})
    await legs.put("amo", "wait:251125184500_698-2", {"until": 2.0})
    await legs.put("amo", "251125184500_698-1", {"ended": True})
    await legs.put("other", "wait:251125184500_698-3", {"until": 3.0})
    assert await legs.keys("amo", "wait:") == [
        ("wait:251125184500_698-1", {"until": 1.0}),
        ("wait:251125184500_698-2", {"until": 2.0}),
    ]
    assert await legs.keys("amo", "none:") == []


async def test_a_marker_is_taken_once(legs: LegStore) -> None:
    await legs.put("amo", "wait:251125184500_698-1", {"until": 1.0})
    taken = await asyncio.gather(*(legs.take("amo", "wait:251125184500_698-1") for _ in range(3)))
    assert sorted(taken, key=lambda t: t is None) == [{"until": 1.0}, None, None]
    assert await legs.get("amo", "wait:251125184500_698-1") is None
    assert await legs.take("amo", "wait:never-there") is None
