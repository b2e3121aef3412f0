"""Call Control `makecall` (docs/3cx.md §2.1, §2.4): an extension dials a number, as a CRM's click-to-call asks.

    POST /callcontrol/{dn}/makecall                       {"destination": "79…", "timeout": 30}
    POST /callcontrol/{dn}/devices/{device_id}/makecall   the same from one device (URL-encoded SIP contact)
    POST /sim/makecall {"scenario": "outbound_unanswered", "params": {"talk_seconds": 2}}   (not 3CX: how the
                                                          calls that follow makecalls play; outbound_answered)

Both answer like 3CX's CallControlResultResponse once the extension's `Dialing` participant exists:
`{"finalstatus": "Success", "reason": "None", "reasontext": "", "result": <participant>}`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from . import callcontrol, scenarios
from .flow import Params
from .state import EXTENSION

PLAYS = ("outbound_answered", "outbound_unanswered")


@dataclass
class MakecallPlay:
    """What a makecall starts: one of the outbound scenarios, with these params."""

    scenario: str = "outbound_answered"
    params: dict[str, Any] = field(default_factory=dict)


def _failed(status: int, reason: str, text: str) -> web.Response:
    return web.json_response(
        {"finalstatus": "Failed", "reason": reason, "reasontext": text, "result": None}, status=status
    )


def add_routes(app: web.Application, state_key: web.AppKey[Any]) -> None:
    play = MakecallPlay()

    async def makecall(request: web.Request) -> web.Response:
        state = request.app[state_key]
        dn = state.pbx.visible(request.match_info["dn"])
        if dn is None or dn.type != EXTENSION:
            raise web.HTTPNotFound()
        device = request.match_info.get("device")
        if device is not None and unquote(device) != dn.device()["device_id"]:
            raise web.HTTPNotFound()
        try:
            body = await request.json()
        except ValueError:
            body = None
        destination = body.get("destination") if isinstance(body, dict) else None
        if not isinstance(destination, str) or not destination.strip().lstrip("+").isdigit():
            return _failed(400, "InvalidDestination", "destination must be a phone number")
        params = {**play.params, "ext": dn.number, "callee": destination.strip()}
        row = state.player.start(scenarios.build(play.scenario, params), gap=Params.parse(params).gap)
        for _ in range(200):
            if row.changes or row.done:
                break
            await asyncio.sleep(0.005)
        status, participant = callcontrol.read(state.pbx, row.changes[0]["entity"]) if row.changes else (404, None)
        if status != 200:
            return _failed(500, "Unknown", "the call ended before it started")
        return web.json_response({"finalstatus": "Success", "reason": "None", "reasontext": "", "result": participant})

    async def choose(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if (
            not isinstance(body, dict)
            or body.get("scenario") not in PLAYS
            or not isinstance(body.get("params", {}), dict)
        ):
            return web.json_response(
                {"error": f"give 'scenario' ({' or '.join(PLAYS)}) and optional 'params'"}, status=400
            )
        params = {k: v for k, v in body.get("params", {}).items() if k not in ("ext", "callee")}
        try:
            Params.parse(params)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        play.scenario, play.params = body["scenario"], params
        return web.json_response({"scenario": play.scenario, "params": play.params})

    app.router.add_post("/callcontrol/{dn}/makecall", makecall)
    app.router.add_post("/callcontrol/{dn}/devices/{device}/makecall", makecall)
    app.router.add_post("/sim/makecall", choose)
