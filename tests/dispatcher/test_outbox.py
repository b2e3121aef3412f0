"""The outbox and retry policy in-process: pruning, chain readiness, jitter bounds, Retry-After parsing."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
import types
from pathlib import Path
from typing import Any

import pytest

from tcxhooks.dispatcher import housekeeping
from tcxhooks.dispatcher.endpoints import Endpoint, Endpoints
from tcxhooks.dispatcher.filters import EndpointFilter
from tcxhooks.dispatcher.intake import Intake
from tcxhooks.dispatcher.ledger import Ledger
from tcxhooks.dispatcher.outbox import Outbox
from tcxhooks.dispatcher.payloads import attributes, call_id_of, event_names
from tcxhooks.dispatcher.records import AttemptRecord, NewEvent, Outcome, Routing
from tcxhooks.dispatcher.retry import RetryPolicy, parse_retry_after
from tcxhooks.dispatcher.schema import DEAD, DELIVERED, PENDING
from tcxhooks.dispatcher.worker import Worker
from tcxhooks.platform.store import Store, open_store

from .conftest import answered, ended, new_chain, ringing


def _new(event: object) -> NewEvent:
    form, json_type = event_names(event)  # type: ignore[arg-type]
    return NewEvent(event, form, json_type, call_id_of(event), attributes(event))  # type: ignore[arg-type]


async def test_chain_order_and_prune(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'o.db'}")
    try:
        outbox = Outbox(store, owner="test")
        await outbox.migrate()
        chain = new_chain()
        published, claimed = await outbox.publish(
            [_new(e) for e in (ringing(chain), answered(chain), ended(chain))], Routing(lambda item, attrs: ["a", "b"])
        )
        assert claimed == []  # nothing asked to be claimed
        assert [p.sequence for p in published] == [1, 2, 3]
        first = await outbox.cycle([], {"a": 100, "b": 100}, 60)
        assert [(c.endpoint, c.sequence) for c in first] == [("a", 1), ("b", 1)]  # only each chain's head
        assert await outbox.cycle([], {"a": 100, "b": 100}, 60) == []  # leased: not claimed twice
        attempt = AttemptRecord(1, time.time(), 200, 0.01, "ok", "")
        dead = AttemptRecord(1, time.time(), 500, 0.01, "error", "")
        second = await outbox.cycle(
            [Outcome(first[0], "delivered", attempt), Outcome(first[1], "dead", dead)], {"a": 100, "b": 100}, 60
        )
        assert sorted((c.endpoint, c.sequence) for c in second) == [("a", 2), ("b", 2)]
        third = await outbox.cycle([Outcome(c, "delivered", attempt) for c in second], {"a": 100, "b": 100}, 60)
        await outbox.cycle([Outcome(c, "retry", dead, time.time() + 3600) for c in third], {}, 60)
        statuses = sorted(
            (r.endpoint, r.sequence, r.status) for r in await Ledger(store).list_deliveries(0, chain, "", 100, False)
        )
        assert statuses == [
            ("a", 1, DELIVERED),
            ("a", 2, DELIVERED),
            ("a", 3, PENDING),
            ("b", 1, DEAD),
            ("b", 2, DELIVERED),
            ("b", 3, PENDING),
        ]
        ledger = Ledger(store)
        assert await ledger.prune(3600, 3600) == {DELIVERED: 0, DEAD: 0}  # nothing that old yet
        assert await ledger.prune(0, 3600) == {DELIVERED: 3, DEAD: 0}  # delivered ones go, with their attempts
        left = await ledger.list_deliveries(0, chain, "", 100, True)
        assert sorted((r.endpoint, r.status) for r in left) == [("a", PENDING), ("b", PENDING), ("b", DEAD)]
        assert await store.fetchone("SELECT COUNT(*) FROM dispatcher_events") == (2,)  # answered: all delivered
        assert await store.fetchone("SELECT COUNT(*) FROM dispatcher_attempts") == (3,)
        assert await ledger.prune(0, 0) == {DELIVERED: 0, DEAD: 1}  # the dead one after its own period
        assert await store.fetchone("SELECT COUNT(*) FROM dispatcher_events") == (1,)  # ringing went with it
    finally:
        await store.close()


class _HeldSync:
    """The store, holding each `sync` until the test lets it go."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.syncing = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def sync(self) -> None:
        self.syncing.set()
        await self.release.wait()
        await self.store.sync()


class _Unused:
    """A sink the test never lets the worker call."""

    kind, target = "webhook", "unused"

    async def deliver(self, delivery: Any) -> Any:
        raise AssertionError("the worker is not running")


async def test_a_publish_goes_out_before_its_fsync_and_is_answered_only_after_it(tmp_path: Path) -> None:
    """The monitor deletes an event once Publish answered: it must be on disk by then (a power cut after the
    answer must not lose it). The webhook need not wait for the disk: the claimed delivery reaches the worker
    as soon as the commit is done."""
    store = await open_store(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        commits = _HeldSync(store)
        outbox = Outbox(commits, owner="test")  # type: ignore[arg-type]
        await outbox.migrate()
        everything = EndpointFilter(frozenset({"*"}), frozenset(), frozenset(), frozenset())
        endpoint = Endpoint("a", everything, _Unused(), concurrency=1, max_backlog=100)  # type: ignore[arg-type]
        endpoints = Endpoints(Ledger(store), [endpoint])
        worker = Worker(outbox, endpoints, RetryPolicy((1.0,)), lease_ttl=60, batch=16)
        intake = Intake(outbox, endpoints, worker)
        answer = intake.submit(_new(ringing(new_chain())))
        await asyncio.wait_for(commits.syncing.wait(), 10)
        assert endpoint.queue.qsize() == 1  # handed to its consumer while the fsync runs
        await asyncio.sleep(0.05)
        assert not answer.done()  # not answered before the fsync has returned
        commits.release.set()
        assert (await asyncio.wait_for(answer, 10)).deliveries == 1
    finally:
        await store.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
async def test_publish_claims_chain_heads_up_to_the_room_given(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if dialect == "postgres" else f"sqlite:///{tmp_path / 'c.db'}"
    store = await open_store(url)
    try:
        outbox = Outbox(store, owner="test")
        await outbox.migrate()
        first, second = new_chain(), new_chain()
        events = [ringing(first), answered(first), ringing(second), answered(second)]
        published, claimed = await outbox.publish(
            [_new(e) for e in events], Routing(lambda item, attrs: ["a", "b"]), claim={"a": 1}, lease_ttl=0.2
        )
        assert [p.deliveries for p in published] == [2, 2, 2, 2]
        # room for one on "a": the first chain's head, with what sending it needs; "b" asked for none
        assert [(c.endpoint, c.chain, c.sequence, c.attempts) for c in claimed] == [("a", first, 1, 0)]
        assert claimed[0].payload == events[0].SerializeToString()
        assert claimed[0].event_id == events[0].event_id
        # the worker's claim takes the other heads, never the one claimed at publish, nor a second event
        taken = await outbox.cycle([], {"a": 100, "b": 100}, 60)
        assert sorted((c.endpoint, c.chain == first, c.sequence) for c in taken) == [
            ("a", False, 1),
            ("b", False, 1),
            ("b", True, 1),
        ]
        # the publisher died with it: once the lease runs out, the reaper readies it for anyone, same id
        await asyncio.sleep(0.3)
        assert await outbox.reap() == 1
        again = await outbox.cycle([], {"a": 100}, 60)
        assert [c.id for c in again] == [claimed[0].id]
        # read back from the store as it was handed out at publish: the bytes, the webhook-id, the exact time
        assert again[0]._replace(attempts=0) == claimed[0]
        attempt = AttemptRecord(1, time.time(), 200, 0.01, "ok", "")
        after = await outbox.cycle([Outcome(again[0], "delivered", attempt)], {"a": 100}, 60)
        assert [(c.chain, c.sequence) for c in after] == [(first, 2)]  # delivered: the chain's next is ready
    finally:
        await store.close()


async def test_housekeeping_prunes_in_its_first_round_even_just_after_boot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the monotonic clock starts near 0 when the host boots; the first round must still prune
    monkeypatch.setattr(housekeeping, "time", types.SimpleNamespace(monotonic=lambda: 12.0, time=time.time))
    store = await open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        outbox = Outbox(store, owner="test")
        await outbox.migrate()
        chain = new_chain()
        await outbox.publish(
            [_new(ringing(chain)), _new(answered(chain)), _new(ended(chain))], Routing(lambda item, attrs: ["a"])
        )
        attempt = AttemptRecord(1, time.time(), 200, 0.01, "ok", "")
        for result in ("delivered", "delivered", "dead", "dead"):
            claimed = await outbox.cycle([], {"a": 10}, 60)
            await outbox.cycle([Outcome(c, result, attempt) for c in claimed], {}, 60)
        await store.execute(
            "UPDATE dispatcher_deliveries SET finished_at = ? WHERE sequence IN (1, 3)", (time.time() - 3 * 86400,)
        )
        stopping = asyncio.Event()
        ledger = Ledger(store)
        task = asyncio.create_task(
            housekeeping.housekeeping(outbox, ledger, Endpoints(ledger, []), 2, 4, 60.0, stopping, lambda: None)
        )
        await asyncio.sleep(0.5)
        stopping.set()
        await asyncio.wait_for(task, 5)
        left = await ledger.list_deliveries(0, chain, "", 100, False)
        # the delivered one 3 days old went (kept 2 days); the dead one as old stays (kept 4 days)
        assert [(r.sequence, r.status) for r in left] == [(2, DELIVERED), (3, DEAD)]
    finally:
        await store.close()


def test_retry_schedule_jitter_and_retry_after() -> None:
    policy = RetryPolicy((5.0, 300.0, 1800.0), rng=random.Random(7))
    for failures, base in ((1, 5.0), (2, 300.0), (3, 1800.0)):
        delays = [policy.delay(failures) for _ in range(200)]
        assert all(d is not None and base * 0.8 <= d <= base * 1.2 for d in delays)
        assert len({round(d or 0, 6) for d in delays}) > 100  # jittered, not constant
    assert policy.delay(4) is None  # schedule used up: dead
    assert policy.delay(1, retry_after=60.0) == 60.0  # the receiver asked for longer
    assert 4.0 <= (policy.delay(1, retry_after=1.0) or 0) <= 6.0  # shorter asks are ignored
    assert parse_retry_after("120") == 120.0
    later = email.utils.formatdate(time.time() + 90, usegmt=True)
    assert 85 <= (parse_retry_after(later) or 0) <= 91
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
async def test_redelivering_a_dead_event_puts_it_back_before_its_chains_later_events(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if dialect == "postgres" else f"sqlite:///{tmp_path / 'r.db'}"
    store = await open_store(url)
    try:
        outbox, ledger = Outbox(store, owner="test"), Ledger(store)
        await outbox.migrate()
        chain, other = new_chain(), new_chain()
        await outbox.publish(
            [_new(e) for e in (ringing(chain), answered(chain), ended(chain), ringing(other))],
            Routing(lambda item, attrs: ["a"]),
        )
        ok = AttemptRecord(1, time.time(), 200, 0.01, "ok", "")
        failed = AttemptRecord(1, time.time(), 500, 0.01, "error", "")
        heads = await outbox.cycle([], {"a": 10}, 60)
        second = await outbox.cycle(
            [Outcome(heads[0], "dead", failed), Outcome(heads[1], "delivered", ok)], {"a": 10}, 60
        )
        assert [(c.chain, c.sequence) for c in second] == [(chain, 2)]
        await outbox.cycle([Outcome(second[0], "delivered", ok)], {}, 60)  # the chain's third stays ready
        assert await ledger.redeliver([], None, dead=True) == 1
        # the dead first event is the chain's head again: the third waits behind it
        again = await outbox.cycle([], {"a": 10}, 60)
        assert [(c.chain, c.sequence) for c in again] == [(chain, 1)]
        after = await outbox.cycle([Outcome(again[0], "delivered", ok)], {"a": 10}, 60)
        assert [(c.chain, c.sequence) for c in after] == [(chain, 3)]
        # redelivering by time takes every delivery of the period, delivered ones included
        assert await ledger.redeliver([], time.time() - 60, dead=False) == 4
        assert sorted((c.chain == chain, c.sequence) for c in await outbox.cycle([], {"a": 10}, 60)) == [
            (False, 1),
            (True, 1),
        ]
    finally:
        await store.close()


class _CountedWrites:
    """The store, counting the `dispatcher_deliveries` rows its transactions update (a retry's
    executemany, whose count the drivers do not give, aside)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows_updated = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def run(self, work: Any, durable: bool = True, beside_loop: bool = False) -> Any:
        return await self.store.run(self._counted(work), durable, beside_loop)

    def _counted(self, work: Any) -> Any:
        try:
            query = next(work)
            while True:
                answer = yield query
                if query.sql.startswith("UPDATE dispatcher_deliveries") and query.op != "executemany":
                    self.rows_updated += answer if isinstance(answer, int) else len(answer)
                query = work.send(answer)
        except StopIteration as done:
            return done.value


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
async def test_finishing_a_delivery_hands_the_next_of_its_chain_over_leased_while_there_is_room(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The next delivery of a finished chain is leased in the finishing transaction: written once
    (leased) and once more when finished, never first readied and then claimed."""
    url = request.getfixturevalue("pg_url") if dialect == "postgres" else f"sqlite:///{tmp_path / 'h.db'}"
    store = await open_store(url)
    try:
        counted = _CountedWrites(store)
        outbox = Outbox(counted, owner="test")  # type: ignore[arg-type]
        await outbox.migrate()
        chains = [new_chain() for _ in range(3)]
        await outbox.publish(
            [_new(e) for chain in chains for e in (ringing(chain), answered(chain), ended(chain))],
            Routing(lambda item, attrs: ["a"]),
        )
        ok = AttemptRecord(1, time.time(), 200, 0.01, "ok", "")
        heads = await outbox.cycle([], {"a": 10}, 60)
        assert sorted((c.chain, c.sequence) for c in heads) == sorted((chain, 1) for chain in chains)
        second = await outbox.cycle([Outcome(c, "delivered", ok) for c in heads], {"a": 10}, 60)
        assert sorted((c.chain, c.sequence) for c in second) == sorted((chain, 2) for chain in chains)
        third = await outbox.cycle([Outcome(c, "delivered", ok) for c in second], {"a": 10}, 60)
        assert await outbox.cycle([Outcome(c, "delivered", ok) for c in third], {"a": 10}, 60) == []
        assert counted.rows_updated == 2 * 9  # leased, finished: each of the nine deliveries twice

        # with room for one, the other chains' next deliveries are made ready for a later claim
        others = [new_chain() for _ in range(3)]
        await outbox.publish(
            [_new(e) for chain in others for e in (ringing(chain), answered(chain))], Routing(lambda item, attrs: ["a"])
        )
        firsts = await outbox.cycle([], {"a": 10}, 60)
        assert len(await outbox.cycle([Outcome(c, "delivered", ok) for c in firsts], {"a": 1}, 60)) == 1
        assert len(await outbox.cycle([], {"a": 10}, 60)) == 2
        # a cycle that claims nothing (the worker's last, at shutdown) hands nothing over
        last = [new_chain() for _ in range(2)]
        await outbox.publish(
            [_new(e) for chain in last for e in (ringing(chain), answered(chain))], Routing(lambda item, attrs: ["a"])
        )
        firsts = await outbox.cycle([], {"a": 10}, 60)
        assert await outbox.cycle([Outcome(c, "delivered", ok) for c in firsts], {}, 60) == []
        assert sorted((c.chain, c.sequence) for c in await outbox.cycle([], {"a": 10}, 60)) == sorted(
            (chain, 2) for chain in last
        )
        # a next delivery waiting for its retry is not handed over before it is due
        chain = new_chain()
        await outbox.publish([_new(e) for e in (ringing(chain), answered(chain))], Routing(lambda item, attrs: ["a"]))
        (first,) = await outbox.cycle([], {"a": 10}, 60)
        (waiting,) = await outbox.cycle([Outcome(first, "dead", ok._replace(http_status=400))], {"a": 10}, 60)
        assert (
            await outbox.cycle([Outcome(waiting, "retry", ok._replace(http_status=500), time.time() + 3600)], {}, 60)
            == []
        )
        assert await Ledger(store).redeliver([first.id], None, dead=False) == 1
        (again,) = await outbox.cycle([], {"a": 10}, 60)
        assert again.id == first.id
        assert await outbox.cycle([Outcome(again, "delivered", ok)], {"a": 10}, 60) == []
    finally:
        await store.close()
