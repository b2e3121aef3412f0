"""End to end: simulator → StatusPoller → dispatcher process → CRM receiver, form and json endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tcxhooks.platform.grpc import open_channel
from tcxhooks.v1 import dispatcher_service_pb2, dispatcher_service_pb2_grpc, events_pb2
from tests.fakes.receiver import Receiver, Request
from tests.helpers.services import start, stop, wait_healthy

from .conftest import Harness, Sim, monitor_config, status_config

SERVICE_TOKEN = "status-e2e-service-token"


@pytest.fixture
async def wired(tmp_path: Path, sim: Sim) -> AsyncIterator[tuple[Harness, Receiver]]:
    crm = Receiver().start()
    path = status_config(
        tmp_path,
        sim,
        webhook={"url": crm.url + "/form", "format": "form"},
        services={"token": SERVICE_TOKEN},
        **{"webhook:js": {"url": crm.url + "/json", "format": "json"}},
    )
    config = monitor_config(path)
    dispatcher = start(["dispatcher", "-c", str(path)], tmp_path / "dispatcher.log")
    channel = None
    try:
        await asyncio.to_thread(wait_healthy, config.services.dispatcher)
        channel = open_channel(config.services, "dispatcher")
        stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)

        async def publish(event: events_pb2.Event) -> None:
            await stub.Publish(dispatcher_service_pb2.PublishRequest(event=event), timeout=10)

        harness = await Harness(config, publish=publish).open()
        try:
            yield harness, crm
        finally:
            await harness.close()
    finally:
        if channel is not None:
            await channel.close()
        stop(dispatcher)
        crm.stop()


def split(requests: list[Request]) -> tuple[list[dict[str, str]], list[dict[str, object]]]:
    forms = [r.form() for r in requests if r.path.endswith("/form")]
    jsons = [r.json() for r in requests if r.path.endswith("/json")]
    return forms, jsons


async def test_every_change_type_reaches_the_crm_in_form_and_json(wired: tuple[Harness, Receiver], sim: Sim) -> None:
    harness, crm = wired
    assert await harness.poll() == []
    sim.do("POST", "/profile", {"number": "101", "profile": "Away"})
    sim.do("POST", "/queue-login", {"number": "103", "status": "out"})
    sim.do(
        "POST",
        "/extensions",
        {"number": "120", "first_name": "Nina", "last_name": "Orlova", "email": "nina@example.com", "logged_in": False},
    )
    sim.do("POST", "/agents", {"queue": "800", "number": "120"})
    sim.do("DELETE", "/agents/800/102")
    sim.do("DELETE", "/extensions/105")
    assert len(await harness.poll()) == 7
    await crm.wait_exactly(14)
    forms, jsons = split(crm.requests)
    assert sorted(forms, key=lambda f: (f["user"], f["event"])) == sorted(
        [
            {"event": "forwarding", "user": "101", "name": "Ivan Petrov", "status": "Away", "previous": "Available"},
            {"event": "agentremoved", "user": "102", "queue": "800"},
            {"event": "queuelogin", "user": "103", "name": "Oleg Smirnov", "status": "out", "previous": "in"},
            {"event": "queuestatus", "user": "103", "queue": "801", "status": "out", "previous": "in"},
            {"event": "extensiondeleted", "user": "105", "name": "Pavel Volkov"},
            {"event": "extensionadded", "user": "120", "name": "Nina Orlova", "email": "nina@example.com"},
            {"event": "agentadded", "user": "120", "queue": "800"},
        ],
        key=lambda f: (f["user"], f["event"]),
    )
    types = {(j["type"], j["data"]["user"]) for j in jsons}  # type: ignore[index]
    assert types == {
        ("agent.forwarding_changed", "101"),
        ("queue.agent_removed", "102"),
        ("agent.queue_login_changed", "103"),
        ("agent.queue_status_changed", "103"),
        ("extension.deleted", "105"),
        ("extension.added", "120"),
        ("queue.agent_added", "120"),
    }
    added = next(j for j in jsons if j["type"] == "queue.agent_added")
    assert added["data"] == {"user": "120", "queue": "800", "queuename": "Sales"}

    sim.do("POST", "/queue-status", {"number": "120", "queue": "800", "status": "in"})
    await harness.poll()
    await crm.wait_exactly(16)
    forms, jsons = split(crm.requests[14:])
    assert forms == [{"event": "queuestatus", "user": "120", "queue": "800", "status": "in", "previous": "out"}]
    assert jsons[0]["data"] == {
        "user": "120",
        "queue": "800",
        "status": "in",
        "previous": "out",  # type: ignore[index]
        "queuename": "Sales",
    }


async def test_per_extension_order_and_sequence_and_one_delivery_after_restart(
    wired: tuple[Harness, Receiver], sim: Sim
) -> None:
    harness, crm = wired
    await harness.poll()
    for profile in ("Away", "Out of office", "Available"):
        sim.do("POST", "/profile", {"number": "101", "profile": profile})
        await harness.poll()
    await harness.close()  # down while 101 logs out of queue 800 and changes profile again
    sim.do("POST", "/queue-status", {"number": "101", "queue": "800", "status": "out"})
    sim.do("POST", "/profile", {"number": "101", "profile": "Custom 1"})
    await harness.open()
    await harness.poll()
    await harness.restart()
    assert await harness.poll() == []
    await crm.wait_exactly(10)
    for endpoint in ("/form", "/json"):
        got = [r for r in crm.requests if r.path.endswith(endpoint)]
        events = [r.form() if endpoint == "/form" else r.json()["data"] for r in got]
        assert [(e["status"], e["previous"]) for e in events] == [
            ("Away", "Available"),
            ("Out of office", "Away"),
            ("Available", "Out of office"),
            ("Custom 1", "Available"),
            ("out", "in"),
        ]
        assert [int(r.headers["x-tcxhooks-sequence"]) for r in got] == [1, 2, 3, 4, 5]
        assert len({r.headers["webhook-id"] for r in got}) == 5


async def test_an_answer_lost_after_the_dispatcher_stored_the_event_gives_one_webhook(
    wired: tuple[Harness, Receiver], sim: Sim
) -> None:
    """The dispatcher stored the event but its answer never reached the monitor: the monitor publishes it
    again, and the dispatcher, knowing its id, must not deliver it twice."""
    harness, crm = wired
    deliver = harness.publish
    assert deliver is not None
    lost = 1

    async def publish_then_lose_the_answer(event: events_pb2.Event) -> None:
        nonlocal lost
        await deliver(event)
        if lost:
            lost -= 1
            raise ConnectionError("the dispatcher's answer was lost")

    harness.publish = publish_then_lose_the_answer
    await harness.poll()
    sim.do("POST", "/profile", {"number": "102", "profile": "Away"})
    assert await harness.poll() == []
    assert len(await harness.poll()) == 1  # published again
    hooks = await crm.wait_exactly(2)
    forms, jsons = split(hooks)
    assert forms == [
        {"event": "forwarding", "user": "102", "name": "Maria Sidorova", "status": "Away", "previous": "Available"}
    ]
    assert [j["data"]["status"] for j in jsons] == ["Away"]  # type: ignore[index]
