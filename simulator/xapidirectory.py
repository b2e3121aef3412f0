"""The directory as XAPI serves it (docs/3cx.md §5.2, §5.3): `Users`, `Queues`, `Queues({Id})/Agents`, their
`PATCH` writes and `ReportAgentLoginHistory`; the data is `directory.py`'s.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import odata
from .directory import LOGGED_IN, LOGGED_OUT, Queue, User
from .odata import ODataError

if TYPE_CHECKING:
    from .xapi import Body, Xapi

USER_FIELDS = tuple(User(0, "", "", "").to_json())
QUEUE_FIELDS = (*Queue(0, "", "").to_json(), "Agents")
AGENT_FIELDS = ("Id", "Number", "Name", "SkillGroup", "Tags")
HISTORY_FIELDS = (
    "QueueNo",
    "AgentNo",
    "Agent",
    "Day",
    "loggedInDt",
    "LoggedOutDt",
    "LoggedInInterval",
    "LoggedInDayInterval",
    "LoggedInTotalInterval",
    "TalkingInterval",
    "TalkingDayInterval",
    "TalkingTotalInterval",
)
_USER_PATCH = {"CurrentProfileName", "QueueStatus", "FirstName", "LastName", "EmailAddress"}


def _by_key(items: Any, key: int | str, text: str) -> Any:
    """The user or queue whose Id (int key) or Number (string key) it is; KeyError (404) otherwise."""
    found = next((i for i in items if (i.id == key if isinstance(key, int) else i.number == key)), None)
    if found is None:
        raise KeyError(text)
    return found


def _queue(x: Xapi, request: web.Request) -> Queue:
    text = request.match_info["key"]
    queue: Queue = _by_key(x.directory(request).queues.values(), odata.key_arg(text), text)
    return queue


def _expand_agents(request: web.Request) -> bool:
    expand = request.query.get("$expand", "").strip()
    if expand not in ("", "Agents"):
        raise ODataError(f"Queues supports $expand=Agents only, got {expand!r}")
    return expand == "Agents"


async def _json_object(request: web.Request) -> Body:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ODataError("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ODataError("body must be a JSON object")
    return body


async def users(x: Xapi, request: web.Request) -> Body:
    if request.query.get("$expand"):
        raise ODataError("Users supports no $expand here")
    rows = [u.to_json() for u in x.directory(request).users.values()]
    return x.collection(request, "Users", rows, USER_FIELDS)


async def user(x: Xapi, request: web.Request) -> Body:
    text = request.match_info["key"]
    row = _by_key(x.directory(request).users.values(), odata.key_arg(text), text).to_json()
    if request.query.get("$select"):
        row = odata.apply([row], {"$select": request.query["$select"]}, USER_FIELDS)[0][0]
    return {"@odata.context": f"{request.scheme}://{request.host}/xapi/v1/$metadata#Users/$entity", **row}


async def queues(x: Xapi, request: web.Request) -> Body:
    directory, expand = x.directory(request), _expand_agents(request)
    rows = [directory.queue_json(q, expand) for q in directory.queues.values()]
    return x.collection(request, "Queues", rows, QUEUE_FIELDS)


async def queue(x: Xapi, request: web.Request) -> Body:
    row = x.directory(request).queue_json(_queue(x, request), _expand_agents(request))
    return {"@odata.context": f"{request.scheme}://{request.host}/xapi/v1/$metadata#Queues/$entity", **row}


async def agents(x: Xapi, request: web.Request) -> Body:
    rows = [x.directory(request).agent_json(a) for a in _queue(x, request).agents]
    return x.collection(request, "Agents", rows, AGENT_FIELDS)


async def patch_user(x: Xapi, request: web.Request) -> None:
    """`PATCH /Users({Id})` with the fields the simulator models (docs/3cx.md §5.2)."""
    directory, text = x.directory(request), request.match_info["key"]
    user: User = _by_key(directory.users.values(), odata.key_arg(text), text)
    body = await _json_object(request)
    unsupported = sorted(set(body) - _USER_PATCH)
    if unsupported:
        raise ODataError(f"the simulator cannot change {', '.join(unsupported)}")
    if any(not isinstance(body[k], str) for k in body):
        raise ODataError("values must be strings")
    if "QueueStatus" in body and body["QueueStatus"] not in (LOGGED_IN, LOGGED_OUT):
        raise ODataError(f"QueueStatus must be {LOGGED_IN} or {LOGGED_OUT}")
    if {"FirstName", "LastName", "EmailAddress"} & set(body):
        directory.rename(user.number, body.get("FirstName"), body.get("LastName"), body.get("EmailAddress"))
    if "CurrentProfileName" in body:
        directory.set_profile(user.number, body["CurrentProfileName"])
    if "QueueStatus" in body:
        directory.set_queue_login(user.number, body["QueueStatus"] == LOGGED_IN)


async def patch_queue(x: Xapi, request: web.Request) -> None:
    """`PATCH /Queues({Id})` with the whole `Agents` array (membership changes, docs/3cx.md §5.3)."""
    directory, queue = x.directory(request), _queue(x, request)
    body = await _json_object(request)
    agents = body.get("Agents")
    if (
        set(body) != {"Agents"}
        or not isinstance(agents, list)
        or not all(isinstance(a, dict) and isinstance(a.get("Number"), str) for a in agents)
    ):
        raise ODataError('the simulator changes queues only by {"Agents": [{"Number": "…"}, …]}')
    wanted = [a["Number"] for a in agents]
    for number in wanted:
        directory.user(number)
    for number in [a for a in queue.agents if a not in wanted]:
        directory.remove_agent(queue.number, number)
    for number in wanted:
        if number not in queue.agents:
            directory.add_agent(queue.number, number)


async def login_history(x: Xapi, request: web.Request) -> Body:
    args = odata.call_args(request.match_info["call"], "GetAgentLoginHistoryData")
    missing = [n for n in ("clientTimeZone", "startDt", "endDt", "queueDnStr", "agentDnStr") if n not in args]
    if missing:
        raise ODataError(f"GetAgentLoginHistoryData needs {', '.join(missing)}")
    start, end = (dt.datetime.fromtimestamp(odata.moment_arg(args, name), dt.UTC) for name in ("startDt", "endDt"))
    rows = x.directory(request).history(
        start,
        end,
        odata.zone_arg(args["clientTimeZone"]),
        {q for q in args["queueDnStr"].split(",") if q},
        {a for a in args["agentDnStr"].split(",") if a},
    )
    return x.collection(request, "ReportAgentLoginHistory", rows, HISTORY_FIELDS, "Collection(Pbx.AgentLoginHistory)")
