"""StatusPoller against the simulator process: each change type, baselines, failures, ordering."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tcxhooks.platform.retry import Refused
from tcxhooks.v1 import events_pb2

from .conftest import Harness, Sim, monitor_config, status_config, summary

# (control calls, expected events) on the simulator's default directory:
# 101 Ivan Petrov, 102 Maria Sidorova, 103 Oleg Smirnov, 104, 105; queue 800 Sales (101, 102), 801 (103).
CHANGES: dict[str, tuple[list[tuple[str, str, dict[str, Any] | None]], list[tuple[str, ...]]]] = {
    "forwarding": (
        [("POST", "/profile", {"number": "101", "profile": "Out of office"})],
        [("forwarding", "101", "Out of office", "Available", "")],
    ),
    "queuelogin": (
        [("POST", "/queue-login", {"number": "102", "status": "out"})],
        [("queuelogin", "102", "out", "in", ""), ("queuestatus", "102", "out", "in", "800")],
    ),
    "queuestatus": (
        [("POST", "/queue-status", {"number": "101", "queue": "800", "status": "out"})],
        [("queuestatus", "101", "out", "in", "800")],
    ),
    "extensionadded": (
        [
            (
                "POST",
                "/extensions",
                {"number": "120", "first_name": "Nina", "last_name": "Orlova", "email": "nina@example.com"},
            )
        ],
        [("extensionadded", "120", "", "", "")],
    ),
    "extensiondeleted": ([("DELETE", "/extensions/104", None)], [("extensiondeleted", "104", "", "", "")]),
    "agentadded": (
        [("POST", "/agents", {"queue": "800", "number": "104"})],
        [("agentadded", "104", "", "", "800"), ("queuestatus", "104", "in", "out", "800")],
    ),
    "agentremoved": ([("DELETE", "/agents/800/102", None)], [("agentremoved", "102", "", "", "800")]),
}


async def test_first_start_is_silent_and_so_is_a_restart_without_changes(harness: Harness) -> None:
    assert await harness.poll() == []
    assert await harness.poll() == []
    await harness.restart()
    assert await harness.poll() == []
    assert [e.number for e in harness.poller.extensions()] == ["101", "102", "103", "104", "105"]  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", list(CHANGES))
async def test_each_change_type(harness: Harness, sim: Sim, kind: str) -> None:
    calls, expected = CHANGES[kind]
    await harness.poll()
    for method, path, body in calls:
        sim.do(method, path, body)
    events = await harness.poll()
    assert summary(events) == expected
    for event in events:
        assert event.chain == f"ext:{event.status.user}"
        assert event.occur_time.seconds > 0
    assert len({e.event_id for e in events}) == len(events)
    assert await harness.poll() == []  # reported once


async def test_event_fields(harness: Harness, sim: Sim) -> None:
    await harness.poll()
    sim.do(
        "POST",
        "/extensions",
        {"number": "120", "first_name": "Nina", "last_name": "Orlova", "email": "nina@example.com"},
    )
    sim.do("POST", "/profile", {"number": "101", "profile": "Away"})
    sim.do("DELETE", "/agents/800/102")
    by_type = {e.status.type: e.status for e in await harness.poll()}
    added = by_type[events_pb2.STATUS_EVENT_TYPE_EXTENSION_ADDED]
    assert (added.user, added.name, added.email) == ("120", "Nina Orlova", "nina@example.com")
    forwarding = by_type[events_pb2.STATUS_EVENT_TYPE_FORWARDING]
    assert (forwarding.name, forwarding.status, forwarding.previous) == ("Ivan Petrov", "Away", "Available")
    removed = by_type[events_pb2.STATUS_EVENT_TYPE_AGENT_REMOVED]
    assert (removed.user, removed.queue, removed.queue_name) == ("102", "800", "Sales")


async def test_changes_during_downtime_are_sent_once_after_restart(harness: Harness, sim: Sim) -> None:
    await harness.poll()
    await harness.close()  # the monitor is down
    sim.do("POST", "/profile", {"number": "103", "profile": "Custom 1"})
    sim.do("DELETE", "/extensions/105")
    sim.do("POST", "/queue-status", {"number": "102", "queue": "800", "status": "out"})
    await harness.open()
    assert summary(await harness.poll()) == [
        ("queuestatus", "102", "out", "in", "800"),
        ("forwarding", "103", "Custom 1", "Available", ""),
        ("extensiondeleted", "105", "", "", ""),
    ]
    assert await harness.poll() == []
    await harness.restart()
    assert await harness.poll() == []


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_count_polls_failures_and_changes(harness: Harness, sim: Sim) -> None:
    await harness.poll()
    polls = metric("tcxhooks_monitor_status_poll_seconds_count")
    failures = metric("tcxhooks_monitor_status_poll_failures_total", what="Users")
    forwarding = metric("tcxhooks_monitor_status_changes_total", type="forwarding")
    sim.do("POST", "/fail", {"count": 1, "target": "Users"})
    await harness.poll()
    sim.do("POST", "/profile", {"number": "101", "profile": "Away"})
    await harness.poll()
    assert metric("tcxhooks_monitor_status_poll_failures_total", what="Users") == failures + 1
    assert metric("tcxhooks_monitor_status_changes_total", type="forwarding") == forwarding + 1
    assert metric("tcxhooks_monitor_status_poll_seconds_count") == polls + 1
    assert metric("tcxhooks_monitor_status_extensions") == 5


@pytest.mark.parametrize("target, failing", [("Users", 2), ("Queues", 3)])
async def test_failed_poll_emits_nothing_and_the_change_arrives_once_after(
    harness: Harness, sim: Sim, target: str, failing: int
) -> None:
    await harness.poll()
    sim.do("POST", "/fail", {"count": failing, "target": target, "status": 500})
    sim.do("DELETE", "/extensions/104")
    for _ in range(failing):
        assert await harness.poll() == []
    assert summary(await harness.poll()) == [("extensiondeleted", "104", "", "", "")]
    assert await harness.poll() == []


async def test_partial_answer_never_turns_into_deletions(harness: Harness, sim: Sim) -> None:
    await harness.poll()
    # each faulted answer pages as if the last row did not exist: the first page is short (taken as the
    # server's page size), the next one, from where the rows end, is empty: the read is partial
    for target in ("Users", "Queues"):
        sim.do("POST", "/partial", {"count": 2, "target": target})
        assert await harness.poll() == []
    sim.do("POST", "/profile", {"number": "105", "profile": "Away"})
    sim.do("POST", "/partial", {"count": 6, "target": "Users"})
    for _ in range(3):
        assert await harness.poll() == []
    assert summary(await harness.poll()) == [("forwarding", "105", "Away", "Available", "")]


async def test_a_short_page_is_paged_on_not_taken_as_the_end(harness: Harness, sim: Sim) -> None:
    await harness.poll()
    sim.do("DELETE", "/extensions/104")
    sim.do("POST", "/partial", {"count": 1, "target": "Users"})  # 500 asked, 3 of 4 given, then the 4th
    assert summary(await harness.poll()) == [("extensiondeleted", "104", "", "", "")]


async def test_failing_login_report_keeps_other_events_and_reports_queue_logins_later(
    harness: Harness, sim: Sim
) -> None:
    await harness.poll()
    sim.do("POST", "/fail", {"count": 1, "target": "ReportAgentLoginHistory"})
    sim.do("POST", "/queue-status", {"number": "101", "queue": "800", "status": "out"})
    sim.do("POST", "/profile", {"number": "102", "profile": "Away"})
    assert summary(await harness.poll()) == [("forwarding", "102", "Away", "Available", "")]
    assert summary(await harness.poll()) == [("queuestatus", "101", "out", "in", "800")]


async def test_per_extension_order_across_and_within_polls(harness: Harness, sim: Sim) -> None:
    await harness.poll()
    sim.do("POST", "/profile", {"number": "101", "profile": "Away"})
    first = await harness.poll()
    sim.do("POST", "/queue-status", {"number": "101", "queue": "800", "status": "out"})
    sim.do("POST", "/profile", {"number": "101", "profile": "Available"})
    sim.do("POST", "/queue-login", {"number": "101", "status": "out"})
    sim.do("POST", "/extensions", {"number": "130", "first_name": "Olga"})
    sim.do("POST", "/agents", {"queue": "801", "number": "130"})
    second = await harness.poll()
    assert summary(first + second) == [
        ("forwarding", "101", "Away", "Available", ""),
        ("forwarding", "101", "Available", "Away", ""),
        ("queuelogin", "101", "out", "in", ""),
        ("queuestatus", "101", "out", "in", "800"),
        ("extensionadded", "130", "", "", ""),
        ("agentadded", "130", "", "", "801"),
        ("queuestatus", "130", "in", "out", "801"),
    ]
    assert harness.published == first + second


async def test_publish_failure_keeps_events_and_republishes_the_same_ids_first(harness: Harness, sim: Sim) -> None:
    down = True
    tried: list[events_pb2.Event] = []

    async def dispatcher(event: events_pb2.Event) -> None:
        tried.append(event)
        if down:
            raise ConnectionError("dispatcher unavailable")

    harness.publish = dispatcher
    await harness.poll()
    sim.do("POST", "/profile", {"number": "101", "profile": "Away"})
    assert await harness.poll() == []
    assert await harness.poll() == []
    down = False
    sim.do("POST", "/profile", {"number": "101", "profile": "Available"})
    await harness.restart()  # also survives a restart: the events wait in the store
    events = await harness.poll()
    assert summary(events) == [
        ("forwarding", "101", "Away", "Available", ""),
        ("forwarding", "101", "Available", "Away", ""),
    ]
    # the dispatcher deduplicates by event id: a retried event must carry the id of its first attempt
    assert [e.event_id for e in tried[:3]] == [events[0].event_id] * 3
    assert events[1].event_id != events[0].event_id
    assert await harness.poll() == []


async def test_an_event_the_dispatcher_refuses_for_good_does_not_hold_back_the_ones_after_it(
    harness: Harness, sim: Sim
) -> None:
    tried: list[str] = []

    async def dispatcher(event: events_pb2.Event) -> None:
        tried.append(event.event_id)
        if event.status.user == "101":
            raise Refused("dispatcher Publish refused: INVALID_ARGUMENT (test)")

    harness.publish = dispatcher
    await harness.poll()
    sim.do("POST", "/profile", {"number": "101", "profile": "Away"})
    sim.do("POST", "/profile", {"number": "102", "profile": "Away"})
    events = await harness.poll()
    assert summary(events) == [("forwarding", "102", "Away", "Available", "")]
    refused = [e for e in tried if e != events[0].event_id]
    assert len(refused) == 1
    assert await harness.poll() == [] and tried.count(refused[0]) == 1  # not tried again
    assert REGISTRY.get_sample_value("tcxhooks_monitor_status_poll_failures_total", {"what": "refused"}) >= 1


async def test_run_polls_on_interval_and_poke(tmp_path: Path, sim: Sim) -> None:
    harness = await Harness(monitor_config(status_config(tmp_path, sim, pbx={"poll_interval": "1h"}))).open()
    stopping = asyncio.Event()
    assert harness.poller is not None
    task = asyncio.create_task(harness.poller.run(stopping))
    try:
        await _until(lambda: harness.poller is not None and harness.poller.extensions() != [])
        sim.do("POST", "/profile", {"number": "102", "profile": "Out of office"})
        harness.poller.poke()
        await _until(lambda: len(harness.published) == 1)
        assert summary(harness.published) == [("forwarding", "102", "Out of office", "Available", "")]
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)
        await harness.close()


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
