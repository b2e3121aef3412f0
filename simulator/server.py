"""The simulator's aiohttp application: OAuth token, Call Control REST + WebSocket, XAPI, and `/sim/` control.

state = SimState(SimConfig(client_id="crmhooks", client_secret="…", recordings_dir=Path("rec")))
app = create_app(state)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiohttp import WSMsgType, web

from . import callcontrol, control, makecall, xapi
from .auth import Tokens
from .directory import Directory, Queue, User
from .odata import error_response
from .player import Player
from .state import DEFAULT_DNS, EXTENSION, QUEUE, ROUTEPOINT, TRUNK, Dn, Faults, Listener, Pbx


@dataclass
class SimConfig:
    client_id: str = "crmhooks"
    client_secret: str = "sim-secret"
    token_ttl: float = 60.0
    recordings_dir: Path = Path("sim-recordings")
    recording_delay: float = 0.3
    first_call_number: int = 698
    extra_extensions: int = 0  # extensions 2000… for load tests
    monitor_trunk: bool = False  # the trunk DN is among the API client's monitored DNs
    dns: tuple[Dn, ...] = DEFAULT_DNS  # the PBX's DNs (a played trace brings its own)


@dataclass
class SimState:
    """Everything the app serves: the PBX, its tokens, the scenario player and the directory."""

    config: SimConfig
    pbx: Pbx = field(init=False)
    tokens: Tokens = field(init=False)
    player: Player = field(init=False)
    directory: Directory = field(init=False)
    sockets: dict[web.WebSocketResponse, Listener] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        extra = tuple(Dn(str(2000 + i), EXTENSION, f"Load {2000 + i}") for i in range(self.config.extra_extensions))
        route_point = Dn(self.config.client_id, ROUTEPOINT, "API route point")  # the API client's own DN (§1.1)
        dns = (
            *tuple(
                replace(dn, monitored=True) if self.config.monitor_trunk and dn.type == TRUNK else dn
                for dn in self.config.dns
            ),
            route_point,
            *extra,
        )
        self.pbx = Pbx(dns, self.config.first_call_number)
        self.tokens = Tokens(self.config.client_id, self.config.client_secret, self.config.token_ttl)
        self.player = Player(self.pbx, self.config.recordings_dir, self.config.recording_delay)
        self.directory = directory_for(dns)
        self.player.drop_sockets = lambda: drop_sockets(self)


def directory_for(dns: tuple[Dn, ...]) -> Directory:
    """The XAPI directory matching the DN list: one user per extension; queue 800 → 101, 102; 801 → 103."""
    users = []
    for i, dn in enumerate(d for d in dns if d.type == EXTENSION):
        first, _, last = dn.name.partition(" ")
        users.append(User(i + 1, dn.number, first, last, f"{first.lower()}.{last.lower() or dn.number}@example.com"))
    members = {"800": ["101", "102"], "801": ["103"]}
    queues = [
        Queue(i + 1, dn.number, dn.name, members.get(dn.number, []))
        for i, dn in enumerate(d for d in dns if d.type == QUEUE)
    ]
    return Directory(users, queues)


STATE_KEY = web.AppKey("sim_state", SimState)
TOKENS_KEY = web.AppKey("sim_tokens", Tokens)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _unauthorized() -> web.Response:
    return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every 3CX API (Call Control and XAPI) needs the live bearer token; `/sim/` and the token endpoint do not.
    A fault scheduled by the control API (`/sim/fail`, `/sim/directory/fail`) answers instead of the handler."""
    path = request.path
    if path.startswith("/callcontrol") or path.startswith("/xapi/"):
        tokens = request.app[TOKENS_KEY]
        header = request.headers.get("Authorization")
        if not tokens.valid(header) and not (
            path.startswith("/xapi/")
            and "access_token" in request.query
            and tokens.valid("Bearer " + request.query["access_token"])
        ):
            return _unauthorized()
        target = xapi.target_of(path) if request.method == "GET" else ""
        fault = request.app[STATE_KEY].faults.take(path, target)
        if fault is not None:
            return error_response(fault.status, f"simulated failure of {target or path}", "SIMULATED")
    return await handler(request)


async def token(request: web.Request) -> web.Response:
    """`POST /connect/token` (form or multipart): client_credentials only."""
    state = request.app[STATE_KEY]
    try:
        form = await request.post()
    except ValueError:
        form = {}  # type: ignore[assignment]
    grant = str(form.get("grant_type", ""))
    client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
    if grant != "client_credentials":
        return web.json_response(
            {"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"},
            status=400,
        )
    if not state.tokens.check_credentials(client_id, secret):
        return web.json_response(
            {"error": "unauthorized", "error_description": "Invalid client credentials"}, status=401
        )
    access, expires_in = state.tokens.mint(client_id)
    return web.json_response(
        {"token_type": "Bearer", "expires_in": expires_in, "access_token": access, "refresh_token": None}
    )


async def callcontrol_get(request: web.Request) -> web.Response:
    """`GET /callcontrol[/{dn}[/participants[/{id}]|/devices[/{device}]]]`."""
    status, body = callcontrol.read(request.app[STATE_KEY].pbx, request.raw_path)
    if status != 200:
        raise web.HTTPNotFound()
    return web.json_response(body)


async def websocket(request: web.Request) -> web.StreamResponse:
    """`/callcontrol/ws`: one `{"sequence", "event"}` text frame per participant change (§3.2)."""
    state = request.app[STATE_KEY]
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    listener = Listener()
    state.pbx.listeners.add(listener)
    state.sockets[ws] = listener
    sender = asyncio.get_running_loop().create_task(_send_events(ws, listener))
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                callcontrol.answer_request(state.pbx, listener, message.data)
            elif message.type == WSMsgType.ERROR:
                break
    finally:
        state.pbx.listeners.discard(listener)
        state.sockets.pop(ws, None)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    return ws


async def _send_events(ws: web.WebSocketResponse, listener: Listener) -> None:
    while True:
        frame = await listener.queue.get()
        if ws.closed:
            return
        try:
            await ws.send_str(frame)
        except (ConnectionError, RuntimeError):
            return


async def drop_sockets(state: SimState) -> int:
    """Cuts every WebSocket at the TCP level (no close frame), once the frames already queued are written."""
    count = 0
    for ws, listener in list(state.sockets.items()):
        for _ in range(200):
            if listener.queue.empty():
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0)  # let the sender finish the frame it took off the queue
        transport = ws._req.transport if ws._req is not None else None
        if transport is not None:
            transport.close()
            count += 1
    return count


async def _shutdown(app: web.Application) -> None:
    state = app[STATE_KEY]
    await state.player.close()
    for ws in list(state.sockets):
        await ws.close()


def create_app(state: SimState) -> web.Application:
    app = web.Application(middlewares=[_auth], client_max_size=1024 * 1024)
    app[STATE_KEY] = state
    app[TOKENS_KEY] = state.tokens
    app.router.add_post("/connect/token", token)
    app.router.add_get("/callcontrol/ws", websocket)
    app.router.add_get("/callcontrol", callcontrol_get)
    app.router.add_get("/callcontrol/{tail:.+}", callcontrol_get)
    makecall.add_routes(app, STATE_KEY)
    xapi.add_routes(app, STATE_KEY)
    control.add_routes(app, STATE_KEY, drop_sockets)
    app.on_shutdown.append(_shutdown)
    return app
