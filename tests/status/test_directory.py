"""The simulator's XAPI directory as a client sees it: OData options, auth, the report, control errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tcxhooks.simulator.directory import Directory, DirectoryError

from .conftest import CLIENT_ID, CLIENT_SECRET, Sim


@pytest.fixture
def xapi(sim: Sim) -> Iterator[httpx.Client]:
    token = httpx.post(
        f"{sim.url}/connect/token",
        data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant_type": "client_credentials"},
    ).json()["access_token"]
    with httpx.Client(
        base_url=f"{sim.url}/xapi/v1", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        yield client


def values(reply: httpx.Response) -> list[dict[str, Any]]:
    assert reply.status_code == 200, reply.text
    return list(reply.json()["value"])


def test_users_select_page_count_order_filter(xapi: httpx.Client) -> None:
    reply = xapi.get(
        "/Users",
        params={
            "$select": "Number,CurrentProfileName",
            "$top": "2",
            "$skip": "1",
            "$count": "true",
            "$orderby": "Number desc",
        },
    )
    assert reply.json()["@odata.count"] == 5
    assert values(reply) == [
        {"Number": "104", "CurrentProfileName": "Available"},
        {"Number": "103", "CurrentProfileName": "Available"},
    ]
    found = values(
        xapi.get("/Users", params={"$filter": "Number eq '102' or startswith(LastName,'Smir')", "$select": "Number"})
    )
    assert found == [{"Number": "102"}, {"Number": "103"}]
    assert xapi.get("/Users(Number='101')").json()["DisplayName"] == "Ivan Petrov"


@pytest.mark.parametrize(
    "params", [{"$select": "Nope"}, {"$filter": "Number eq"}, {"$top": "x"}, {"$orderby": "Nope"}, {"$frobnicate": "1"}]
)
def test_bad_queries_answer_an_odata_error(xapi: httpx.Client, params: dict[str, str]) -> None:
    reply = xapi.get("/Users", params=params)
    assert reply.status_code == 400 and "message" in reply.json()["error"]


def test_queues_with_agents_and_agents_by_queue(xapi: httpx.Client) -> None:
    queues = values(xapi.get("/Queues", params={"$expand": "Agents", "$select": "Id,Number,Name"}))
    assert [(q["Number"], [a["Number"] for a in q["Agents"]]) for q in queues] == [
        ("800", ["101", "102"]),
        ("801", ["103"]),
    ]
    assert [a["Number"] for a in values(xapi.get(f"/Queues({queues[0]['Id']})/Agents"))] == ["101", "102"]
    assert xapi.get("/Queues(999)/Agents").status_code == 404


def test_login_history_follows_per_queue_logins(sim: Sim, xapi: httpx.Client) -> None:
    now = dt.datetime.now(dt.UTC)
    call = (
        "/ReportAgentLoginHistory/Pbx.GetAgentLoginHistoryData(clientTimeZone='+03:00',"
        f"startDt={(now - dt.timedelta(days=1)):%Y-%m-%dT%H:%M:%SZ},endDt={(now + dt.timedelta(hours=1)):%Y-%m-%dT%H:%M:%SZ},"
        "queueDnStr='800',agentDnStr='101')"
    )
    assert {row["LoggedOutDt"] for row in values(xapi.get(call))} >= {None}
    sim.do("POST", "/queue-status", {"number": "101", "queue": "800", "status": "out"})
    rows = values(xapi.get(call))
    assert rows and all(row["LoggedOutDt"] for row in rows) and {r["QueueNo"] for r in rows} == {"800"}
    assert rows[-1]["loggedInDt"].endswith("+03:00")
    sim.do("POST", "/queue-status", {"number": "101", "queue": "800", "status": "in"})
    assert values(xapi.get(call))[-1]["LoggedOutDt"] is None
    assert xapi.get("/ReportAgentLoginHistory/Pbx.GetAgentLoginHistoryData(startDt=x)").status_code == 400


def test_token_is_required(sim: Sim) -> None:
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        assert httpx.get(f"{sim.url}/xapi/v1/Users", headers=headers).status_code == 401


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/profile", {"number": "999", "profile": "Away"}),
        ("POST", "/queue-status", {"number": "104", "queue": "800", "status": "in"}),
        ("POST", "/queue-login", {"number": "101", "status": "maybe"}),
        ("POST", "/extensions", {"number": "101", "first_name": "Dup"}),
        ("POST", "/agents", {"queue": "800", "number": "101"}),
        ("DELETE", "/agents/800/105", None),
        ("POST", "/fail", {"count": 0}),
        ("POST", "/fail", {"count": 1, "target": "Nope"}),
    ],
)
def test_control_rejects_bad_requests(sim: Sim, method: str, path: str, body: dict[str, Any] | None) -> None:
    reply = sim.control.request(method, f"/sim/directory{path}", json=body)
    assert reply.status_code == 400 and reply.json()["error"]


def test_generate_builds_a_large_directory(sim: Sim, xapi: httpx.Client) -> None:
    assert sim.do("POST", "/generate", {"extensions": 2000, "queues": 100}) == {"extensions": 2000, "queues": 100}
    reply = xapi.get("/Users", params={"$top": "1", "$count": "true", "$select": "Number"})
    assert reply.json()["@odata.count"] == 2000
    queues = values(xapi.get("/Queues", params={"$expand": "Agents"}))
    assert len(queues) == 100 and all(len(q["Agents"]) == 20 for q in queues)


def test_xapi_writes_change_what_the_reads_show(xapi: httpx.Client) -> None:
    user = values(xapi.get("/Users", params={"$filter": "Number eq '104'"}))[0]
    assert (
        xapi.patch(f"/Users({user['Id']})", json={"CurrentProfileName": "Away", "QueueStatus": "LoggedOut"}).status_code
        == 204
    )
    got = xapi.get(f"/Users({user['Id']})", params={"$select": "CurrentProfileName,QueueStatus"}).json()
    assert (got["CurrentProfileName"], got["QueueStatus"], "Number" in got) == ("Away", "LoggedOut", False)
    queue = values(xapi.get("/Queues", params={"$filter": "Number eq '800'"}))[0]
    assert (
        xapi.patch(f"/Queues({queue['Id']})", json={"Agents": [{"Number": "102"}, {"Number": "104"}]}).status_code
        == 204
    )
    assert [a["Number"] for a in values(xapi.get(f"/Queues({queue['Id']})/Agents"))] == ["102", "104"]
    assert xapi.patch(f"/Users({user['Id']})", json={"QueueStatus": "Maybe"}).status_code == 400
    assert xapi.patch(f"/Users({user['Id']})", json={"Mobile": "1"}).status_code == 400
    assert xapi.patch(f"/Queues({queue['Id']})", json={"Agents": [{"Number": "999"}]}).status_code == 400
    assert xapi.patch("/Users(999)", json={"CurrentProfileName": "Away"}).status_code == 404
    assert httpx.patch(f"{xapi.base_url}/Users(1)", json={"CurrentProfileName": "Away"}).status_code == 401


def test_directory_tells_subscribers_which_extension_changed() -> None:
    directory = Directory()
    changed: list[str] = []
    directory.subscribe(changed.append)
    directory.set_profile("101", "Away")
    directory.set_queue_status("102", "800", False)
    directory.add_extension("150", "New")
    directory.add_agent("800", "150")
    directory.delete_extension("103")
    assert changed == ["101", "102", "150", "150", "103"]
    with pytest.raises(DirectoryError):
        directory.set_queue_status("103", "800", True)
