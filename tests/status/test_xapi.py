"""Garbage from the PBX: every read fails with an error naming the request, and the poll emits nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tcxhooks.monitor.status.xapi import Xapi, XapiError
from tests.helpers.services import write_config

from .conftest import Harness, monitor_config

GOOD_USERS = {
    "@odata.count": 1,
    "value": [
        {
            "Id": 1,
            "Number": "101",
            "FirstName": "Ivan",
            "LastName": "Petrov",
            "CurrentProfileName": "Available",
            "QueueStatus": "LoggedIn",
        }
    ],
}
GOOD_QUEUES = {
    "@odata.count": 1,
    "value": [{"Id": 1, "Number": "800", "Name": "Sales", "Agents": [{"Id": 1, "Number": "101"}]}],
}
GOOD_HISTORY = {"@odata.count": 0, "value": []}


class FakePbx:
    """A PBX whose XAPI answers are whatever the test sets."""

    def __init__(self) -> None:
        self.port = 0  # the system's pick, read back when it starts
        self.answers: dict[str, Any] = {
            "Users": GOOD_USERS,
            "Queues": GOOD_QUEUES,
            "ReportAgentLoginHistory": GOOD_HISTORY,
        }

    async def token(self, request: web.Request) -> web.Response:
        return web.json_response({"token_type": "Bearer", "expires_in": 3600, "access_token": "t"})

    async def xapi(self, request: web.Request) -> web.Response:
        answer = self.answers[request.match_info["set"]]
        if isinstance(answer, (bytes, str)):
            return web.Response(body=answer, content_type="application/json")
        if isinstance(answer, dict) and isinstance(answer.get("value"), list):  # honour $skip/$top
            skip, top = int(request.query.get("$skip", 0)), int(request.query.get("$top", 1000))
            answer = {**answer, "value": answer["value"][skip : skip + top]}
        return web.json_response(answer)

    async def __aenter__(self) -> FakePbx:
        app = web.Application()
        app.router.add_post("/connect/token", self.token)
        app.router.add_get("/xapi/v1/{set:[A-Za-z]+}{rest:.*}", self.xapi)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[tuple[FakePbx, Harness]]:
    async with FakePbx() as pbx:
        config = monitor_config(
            write_config(tmp_path, pbx={"url": f"http://127.0.0.1:{pbx.port}", "client_id": "c", "client_secret": "s"})
        )
        harness = await Harness(config).open()
        try:
            yield pbx, harness
        finally:
            await harness.close()


GARBAGE = [
    ("Users", b"<html>oops</html>", "not JSON"),
    ("Users", [1, 2], "not a JSON object"),
    ("Users", {"value": []}, "no @odata.count"),
    ("Users", {"@odata.count": 1}, "no 'value' list"),
    ("Users", {"@odata.count": 2, "value": GOOD_USERS["value"]}, "partial answer: 1 of 2"),
    ("Users", {"@odata.count": 1, "value": ["x"]}, "row 0 is not an object"),
    ("Users", {"@odata.count": 1, "value": [{"Id": 1}]}, "Number missing"),
    ("Users", {"@odata.count": 1, "value": [{"Id": "1", "Number": "101"}]}, "Id is not a whole number"),
    (
        "Users",
        {"@odata.count": 2, "value": [GOOD_USERS["value"][0], {**GOOD_USERS["value"][0], "Id": 2}]},
        "number 101 appears twice",
    ),
    (
        "Users",
        {"@odata.count": 1, "value": [{"Id": 1, "Number": "101", "QueueStatus": "LoggedIn"}]},
        "CurrentProfileName missing",
    ),
    (
        "Users",
        {"@odata.count": 1, "value": [{"Id": 1, "Number": "101", "CurrentProfileName": "Away", "QueueStatus": "Busy"}]},
        "neither LoggedIn nor LoggedOut",
    ),
    ("Queues", {"@odata.count": 1, "value": [{"Id": 1, "Number": "800"}]}, "Agents missing"),
    ("Queues", {"@odata.count": 1, "value": [{"Id": 1, "Number": "800", "Agents": [{"Id": 3}]}]}, "Number missing"),
]


@pytest.mark.parametrize("target, answer, message", GARBAGE)
async def test_garbage_is_an_error_naming_the_request_and_no_event(
    fake: tuple[FakePbx, Harness], target: str, answer: Any, message: str
) -> None:
    pbx, harness = fake
    assert await harness.poll() == []  # baseline: 101 in queue 800
    pbx.answers[target] = answer
    assert harness.pbx is not None
    with pytest.raises(XapiError) as caught:
        await (Xapi(harness.pbx).users() if target == "Users" else Xapi(harness.pbx).queues())
    assert str(caught.value).startswith(f"XAPI {target}") and message in str(caught.value)
    assert await harness.poll() == []
    assert [e.number for e in harness.poller.extensions()] == ["101"]  # type: ignore[union-attr]


async def test_garbage_login_history_keeps_the_last_queue_logins(fake: tuple[FakePbx, Harness]) -> None:
    pbx, harness = fake
    pbx.answers["ReportAgentLoginHistory"] = {
        "@odata.count": 1,
        "value": [{"QueueNo": "800", "AgentNo": "101", "loggedInDt": "2026-01-01T08:00:00Z", "LoggedOutDt": None}],
    }
    await harness.poll()
    pbx.answers["ReportAgentLoginHistory"] = {
        "@odata.count": 1,
        "value": [{"QueueNo": "800", "AgentNo": "101", "loggedInDt": "yesterday"}],
    }
    assert await harness.poll() == []
    pbx.answers["ReportAgentLoginHistory"] = GOOD_HISTORY  # no row: the last known state stays
    assert await harness.poll() == []
    pbx.answers["ReportAgentLoginHistory"] = {
        "@odata.count": 1,
        "value": [
            {
                "QueueNo": "800",
                "AgentNo": "101",
                "loggedInDt": "2026-01-01T08:00:00Z",
                "LoggedOutDt": "2026-01-01T09:00:00Z",
            }
        ],
    }
    events = await harness.poll()
    assert [(e.status.user, e.status.queue, e.status.status) for e in events] == [("101", "800", "out")]


async def test_a_slow_pbx_times_out_with_a_clear_error() -> None:
    class Slow:
        async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
            await asyncio.sleep(5)

    with pytest.raises(XapiError, match=r"Users: no answer within 0\.2 s"):
        await Xapi(Slow(), timeout=0.2).users()


async def test_open_session_may_carry_a_placeholder_logout(fake: tuple[FakePbx, Harness]) -> None:
    pbx, harness = fake
    await harness.poll()  # baseline: no session, 101 out of queue 800
    pbx.answers["ReportAgentLoginHistory"] = {
        "@odata.count": 2,
        "value": [
            {
                "QueueNo": "800",
                "AgentNo": "101",
                "loggedInDt": "2026-01-01T00:00:00+03:00",
                "LoggedOutDt": "2026-01-01T18:00:00.1234567+03:00",
            },
            {
                "QueueNo": "800",
                "AgentNo": "101",
                "loggedInDt": "2026-01-02T08:00:00+03:00",
                "LoggedOutDt": "0001-01-01T00:00:00Z",
            },
        ],
    }
    events = await harness.poll()
    assert [(e.status.user, e.status.queue, e.status.status) for e in events] == [("101", "800", "in")]
