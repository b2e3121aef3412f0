"""The simulator's XAPI (docs/3cx.md §5): the route table, the state its handlers read, and how their bodies
become answers. The handlers live in `xapicalls.py`, `xapiconfig.py` and `xapidirectory.py`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import odata, xapicalls, xapiconfig, xapidirectory
from .directory import Directory, DirectoryError
from .odata import ODataError
from .state import Pbx

BASE = "/xapi/v1/"
_NOT_FOUND = "No HTTP resource was found that matches the request URI."
Body = dict[str, Any]
Handler = Callable[["Xapi", web.Request], Awaitable[Any]]


def target_of(path: str) -> str:
    """The collection an XAPI path reads: `/xapi/v1/Queues(3)/Agents` → Agents, `…/ReportX/Pbx.F(…)` → ReportX."""
    if not path.startswith(BASE):
        return ""
    names = [part.split("(")[0] for part in path[len(BASE) :].split("/") if part and not part.startswith("Pbx.")]
    return names[-1] if names else ""


class Xapi:
    """What every handler reads: the simulator's state, and the OData collection reply."""

    def __init__(self, state_key: web.AppKey[Any]) -> None:
        self.key = state_key

    def pbx(self, request: web.Request) -> Pbx:
        pbx: Pbx = request.app[self.key].pbx
        return pbx

    def directory(self, request: web.Request) -> Directory:
        directory: Directory = request.app[self.key].directory
        return directory

    def collection(
        self, request: web.Request, target: str, rows: list[Body], fields: tuple[str, ...], context: str = ""
    ) -> Body:
        """An OData collection reply; a scheduled `/sim/directory/partial` fault makes it one row short."""
        short = request.app[self.key].faults.take(request.path, target, short=True) is not None
        value, count = odata.apply(rows, request.query, fields, short=short)
        body: Body = {"@odata.context": f"{request.scheme}://{request.host}/xapi/v1/$metadata#{context or target}"}
        if count is not None:
            body["@odata.count"] = count
        body["value"] = value
        return body


def _serve(x: Xapi, target: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Turns a handler's body (or exception) into the XAPI answer: JSON, 204 for a write, or an OData error
    (`ODataError` and `DirectoryError` are 400, `KeyError` is 404). Tokens and faults are checked before (server.py)."""

    async def serve(request: web.Request) -> web.StreamResponse:
        try:
            body = await handler(x, request)
        except (ODataError, DirectoryError) as exc:
            return odata.error_response(400, str(exc), "BadRequest")
        except KeyError as exc:
            return odata.error_response(404, f"{target} {exc.args[0]} not found", "WARNINGS.XAPI.NOT_FOUND")
        if isinstance(body, web.StreamResponse):
            return body
        if body is None:
            return web.Response(status=204)
        return web.json_response(body, dumps=functools.partial(json.dumps, ensure_ascii=False))

    return serve


async def not_found(x: Xapi, request: web.Request) -> web.Response:
    return odata.error_response(404, _NOT_FOUND)


def add_routes(app: web.Application, state_key: web.AppKey[Any]) -> None:
    x = Xapi(state_key)
    get = app.router.add_get
    for path, target, handler in (
        ("Recordings", "Recordings", xapicalls.recordings),
        ("Recordings({key})", "Recordings", not_found),  # by key is 404 on a real V20 too (§5.7)
        ("Recordings/{call:.+}", "Recordings", xapicalls.recording_function),
        ("Trunks", "Trunks", xapiconfig.trunks),
        ("DidNumbers", "DidNumbers", xapiconfig.did_numbers),
        ("InboundRules", "InboundRules", xapiconfig.inbound_rules),
        ("Peers", "Peers", xapiconfig.peers),
        ("ActiveCalls", "ActiveCalls", xapicalls.active_calls),
        ("SystemStatus", "SystemStatus", xapiconfig.system_status),
        ("ReportInboundCalls/{call:.+}", "ReportInboundCalls", xapicalls.inbound_calls),
        ("ReportQueueCallbacks/{call:.+}", "ReportQueueCallbacks", xapicalls.queue_callbacks),
        ("ReportCallLogData/{call:.+}", "ReportCallLogData", xapicalls.call_log),  # the bare set is 404 on a V20 too
        ("ReportAgentLoginHistory/{call:.+}", "ReportAgentLoginHistory", xapidirectory.login_history),
        ("Users", "Users", xapidirectory.users),
        ("Users({key})", "Users", xapidirectory.user),
        ("Queues", "Queues", xapidirectory.queues),
        ("Queues({key})", "Queues", xapidirectory.queue),
        ("Queues({key})/Agents", "Agents", xapidirectory.agents),
    ):
        get(BASE + path, _serve(x, target, handler))
    app.router.add_patch(BASE + "Users({key})", _serve(x, "Users", xapidirectory.patch_user))
    app.router.add_patch(BASE + "Queues({key})", _serve(x, "Queues", xapidirectory.patch_queue))
    get(BASE + "{unknown:.*}", _serve(x, "", not_found))
