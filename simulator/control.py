"""The simulator's own control API under `/sim/` (not 3CX; no token): play scenarios, load, faults, inspection."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from . import scenarios, trace
from .directory import Directory, DirectoryError
from .flow import Params
from .state import DIRECTORY_TARGETS, Fault
from .steps import Script, Upsert


@dataclass
class LoadRun:
    id: int
    calls: int
    rate: float
    scenario: str
    started: int = 0
    call_numbers: tuple[int, ...] = ()
    finished_starting: bool = False


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json"
        )
    return body


class Control:
    def __init__(self, state_key: web.AppKey[Any], drop: Callable[[Any], Awaitable[int]]) -> None:
        self.key = state_key
        self.drop_sockets = drop
        self.loads: dict[int, LoadRun] = {}
        self.load_tasks: set[asyncio.Task[None]] = set()

    def _script(self, request: web.Request, name: Any, params: Any) -> Script:
        if not isinstance(name, str) or not name:
            raise ValueError("'scenario' must be a scenario name (GET /sim/scenarios)")
        if params is not None and not isinstance(params, dict):
            raise ValueError("'params' must be an object")
        try:
            script = scenarios.build(name, params)
        except KeyError:
            raise ValueError(f"unknown scenario {name!r}") from None
        return self._on_these_dns(request, script)

    def _on_these_dns(self, request: web.Request, script: Script) -> Script:
        dns = request.app[self.key].pbx.dns
        unknown = sorted({s.dn for s in script.steps if isinstance(s, Upsert) and s.dn not in dns})
        if unknown:
            raise ValueError(f"scenario {script.name} uses DNs this PBX does not have: {', '.join(unknown)}")
        return script

    def _trace(self, request: web.Request, text: Any) -> Script:
        """A trace of `tcxhooks capture` (its JSON lines as one string) as a script."""
        if not isinstance(text, str):
            raise ValueError("'trace' must be the trace's JSON lines as one string")
        return self._on_these_dns(request, trace.script_of(trace.records_of(text.splitlines())))

    async def play(self, request: web.Request) -> web.Response:
        """`{"scenario": NAME, "params": {...}}`, or `{"trace": "<JSON lines>"}` to play a trace."""
        body = await _json(request)
        params = body.get("params", {})
        try:
            if "trace" in body:
                script, gap = self._trace(request, body["trace"]), 0.0
            else:
                script = self._script(request, body.get("scenario"), params)
                gap = Params.parse(params).gap
        except ValueError as exc:
            return _bad(str(exc))
        record = body.get("record", True)
        if not isinstance(record, bool):
            return _bad("'record' must be true or false")
        drops = body.get("drop_ws_after", [])
        if not isinstance(drops, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in drops):
            return _bad("'drop_ws_after' must be a list of step numbers")
        row = request.app[self.key].player.start(script, gap=gap, record=record, drop_after=frozenset(drops))
        return web.json_response(
            {
                "call_number": row.call_number,
                "scenario": row.scenario,
                "calls": {name: kind for name, kind in script.calls.items()},
            }
        )

    async def scenario_list(self, request: web.Request) -> web.Response:
        return web.json_response({"scenarios": scenarios.names(), "params": asdict(Params())})

    async def calls(self, request: web.Request) -> web.Response:
        rows = request.app[self.key].pbx.calls.values()
        return web.json_response(
            {"calls": [asdict(row) for row in rows], "active": sum(1 for row in rows if not row.done)}
        )

    async def call(self, request: web.Request) -> web.Response:
        raw = request.match_info["number"]
        row = request.app[self.key].pbx.calls.get(int(raw)) if raw.isdigit() else None
        if row is None:
            return _bad("no such call", 404)
        return web.json_response(asdict(row))

    async def ws_drop(self, request: web.Request) -> web.Response:
        return web.json_response({"dropped": await self.drop_sockets(request.app[self.key])})

    async def ws_inject(self, request: web.Request) -> web.Response:
        """Sends one frame to every socket: `{"raw": text}` verbatim, or an envelope built from `event_type`,
        `entity`, `attached_data` and optionally `sequence` (else each socket's next number)."""
        body = await _json(request)
        listeners = request.app[self.key].pbx.listeners
        if "raw" in body:
            if not isinstance(body["raw"], str):
                return _bad("'raw' must be a string")
            for listener in listeners:
                listener.push_raw(body["raw"])
            return web.json_response({"sockets": len(listeners)})
        event_type, entity, sequence = body.get("event_type"), body.get("entity"), body.get("sequence")
        if (
            not isinstance(event_type, int)
            or not isinstance(entity, str)
            or not (sequence is None or isinstance(sequence, int))
        ):
            return _bad("give 'raw', or 'event_type' (int) and 'entity' (string), optionally 'sequence' (int)")
        for listener in listeners:
            listener.push(event_type, entity, body.get("attached_data"), sequence)
        return web.json_response({"sockets": len(listeners)})

    async def ws_lose(self, request: web.Request) -> web.Response:
        """`{"lose": true}`: every open socket numbers its frames but sends none until `{"lose": false}`."""
        body = await _json(request)
        if not isinstance(body.get("lose"), bool):
            return _bad("give 'lose' (true or false)")
        listeners = request.app[self.key].pbx.listeners
        for listener in listeners:
            listener.losing = body["lose"]
        return web.json_response({"sockets": len(listeners)})

    async def call_log(self, request: web.Request) -> web.Response:
        """`{"hold": true}`: the call-log rows of calls that end are kept back until `{"hold": false}`."""
        body = await _json(request)
        if not isinstance(body.get("hold"), bool):
            return _bad("give 'hold' (true or false)")
        request.app[self.key].player.call_log.hold(body["hold"])
        return web.json_response({"hold": body["hold"]})

    async def fail(self, request: web.Request) -> web.Response:
        """`{"prefix": "/callcontrol", "status": 503, "count": 1}`: the next matching PBX requests fail;
        `count` 0 clears every pending failure."""
        body = await _json(request)
        state = request.app[self.key]
        prefix, status, count = body.get("prefix", "/callcontrol"), body.get("status", 503), body.get("count", 1)
        if not isinstance(count, int) or not 0 <= count <= 100_000:
            return _bad("'count' must be 0..100000")
        if count == 0:
            state.faults.clear()
            return web.json_response({"pending": 0})
        if not isinstance(prefix, str) or not prefix.startswith(("/callcontrol", "/xapi/")):
            return _bad("'prefix' must start with /callcontrol or /xapi/")
        if not isinstance(status, int) or not 400 <= status <= 599:
            return _bad("'status' must be 400..599")
        return web.json_response({"pending": state.faults.add(Fault(count, status, prefix=prefix))})

    async def token_expire(self, request: web.Request) -> web.Response:
        return web.json_response({"expired": request.app[self.key].tokens.expire_all()})

    async def load(self, request: web.Request) -> web.Response:
        """`{"calls": N, "rate": R, "scenario": "inbound_answered", "params": {...}, "record": false}`."""
        body = await _json(request)
        try:
            calls, rate = int(body.get("calls", 100)), float(body.get("rate", 100))
        except (TypeError, ValueError):
            return _bad("'calls' and 'rate' must be numbers")
        if not 1 <= calls <= 100_000 or not 0 < rate <= 10_000:
            return _bad("'calls' must be 1..100000 and 'rate' 0..10000 starts per second")
        name = body.get("scenario", "inbound_answered")
        raw_params = body.get("params", {})
        if not isinstance(raw_params, dict):
            return _bad("'params' must be an object")
        params = dict(raw_params)
        params.setdefault("talk_seconds", calls / rate + 5)
        params.setdefault("ring_seconds", 1.0)
        state = request.app[self.key]
        exts = [d.number for d in state.pbx.dns.values() if d.type == "Wextension" and d.monitored]
        try:
            per_ext = name in scenarios.EXT_SCENARIOS  # spread one-extension calls over every extension
            scripts = [
                self._script(request, name, {**params, "ext": exts[i % len(exts)]} if per_ext else params)
                for i in range(min(calls, len(exts)) if per_ext else 1)
            ]
            gap = Params.parse(params).gap
        except ValueError as exc:
            return _bad(str(exc))
        record = body.get("record", False)
        if not isinstance(record, bool):
            return _bad("'record' must be true or false")
        run = LoadRun(len(self.loads) + 1, calls, rate, name)
        self.loads[run.id] = run
        task = asyncio.get_running_loop().create_task(self._run_load(state, run, scripts, gap, record))
        self.load_tasks.add(task)
        task.add_done_callback(self.load_tasks.discard)
        return web.json_response({"load": run.id, "calls": calls, "rate": rate, "scenario": name, "params": params})

    async def _run_load(self, state: Any, run: LoadRun, scripts: list[Script], gap: float, record: bool) -> None:
        began = time.monotonic()
        numbers: list[int] = []
        for i in range(run.calls):
            delay = began + i / run.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            numbers.append(state.player.start(scripts[i % len(scripts)], gap=gap, record=record).call_number)
            run.started = i + 1
        run.call_numbers = tuple(numbers)
        run.finished_starting = True

    async def load_status(self, request: web.Request) -> web.Response:
        calls = request.app[self.key].pbx.calls
        out = []
        for run in self.loads.values():
            done = sum(1 for n in run.call_numbers if n not in calls or calls[n].done) if run.finished_starting else 0
            out.append(
                {
                    "load": run.id,
                    "calls": run.calls,
                    "rate": run.rate,
                    "scenario": run.scenario,
                    "started": run.started,
                    "finished_starting": run.finished_starting,
                    "done": done,
                }
            )
        return web.json_response({"loads": out})

    async def close(self, app: web.Application) -> None:
        for task in list(self.load_tasks):
            task.cancel()
        await asyncio.gather(*self.load_tasks, return_exceptions=True)


# --- /sim/directory: the XAPI directory's data and its faults ---------------------------------------------


def _text_field(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if value is None:
        raise DirectoryError(f"missing {name!r}")
    return str(value)


def _in_out(body: dict[str, Any]) -> bool:
    status = _text_field(body, "status").lower()
    if status not in ("in", "out"):
        raise DirectoryError("status must be 'in' or 'out'")
    return status == "in"


def _int_field(body: dict[str, Any], name: str, default: int, low: int, high: int, meaning: str) -> int:
    try:
        value = int(body.get(name, default))
    except (TypeError, ValueError):
        raise DirectoryError(f"{name} must be {meaning}") from None
    if not low <= value <= high:
        raise DirectoryError(f"{name} must be from {low} to {high}")
    return value


def _directory_fault(body: dict[str, Any], short: bool) -> Fault:
    """`{"count": 1, "target": "Users", "status": 503}`: the next reads of a directory collection fail, or
    (short) answer one row short; no target: any of DIRECTORY_TARGETS."""
    target = _text_field(body, "target", "" if not short else "Users")
    if target and target not in DIRECTORY_TARGETS:
        raise DirectoryError(f"target must be one of {', '.join(DIRECTORY_TARGETS)} or empty, got {target!r}")
    count = _int_field(body, "count", 1, 1, 100_000, "a whole number")
    status = 0 if short else _int_field(body, "status", 503, 400, 599, "an HTTP status code")
    return Fault(count, status, target=target, short=short)


def _generate(directory: Directory, body: dict[str, Any]) -> dict[str, int]:
    extensions = _int_field(body, "extensions", 2000, 0, 100_000, "a whole number")
    queues = _int_field(body, "queues", 100, 0, 10_000, "a whole number")
    directory.regenerate(extensions, queues, _int_field(body, "agents_per_queue", 20, 0, 1000, "a whole number"))
    return {"extensions": len(directory.users), "queues": len(directory.queues)}


DirectoryAction = Callable[[Any, dict[str, Any], web.Request], Any]


def _directory_control(state_key: web.AppKey[Any], action: DirectoryAction) -> Callable[..., Any]:
    """`action(state, body, request)` → its result as JSON (`{"ok": true}` for none); DirectoryError → 400."""

    async def serve(request: web.Request) -> web.Response:
        state = request.app[state_key]
        body = await _json(request) if request.method == "POST" else {}
        try:
            result = action(state, body, request)
        except DirectoryError as exc:
            return _bad(str(exc))
        return web.json_response(result if result is not None else {"ok": True})

    return serve


def _add_directory_routes(app: web.Application, state_key: web.AppKey[Any]) -> None:
    def on(method: str, path: str, action: DirectoryAction) -> None:
        app.router.add_route(method, "/sim/directory" + path, _directory_control(state_key, action))

    on("GET", "", lambda s, b, r: s.directory.snapshot())
    on("POST", "/profile", lambda s, b, r: s.directory.set_profile(_text_field(b, "number"), _text_field(b, "profile")))
    on("POST", "/queue-login", lambda s, b, r: s.directory.set_queue_login(_text_field(b, "number"), _in_out(b)))
    on(
        "POST",
        "/queue-status",
        lambda s, b, r: s.directory.set_queue_status(_text_field(b, "number"), _text_field(b, "queue"), _in_out(b)),
    )
    on(
        "POST",
        "/extensions",
        lambda s, b, r: s.directory.add_extension(
            _text_field(b, "number"),
            _text_field(b, "first_name", ""),
            _text_field(b, "last_name", ""),
            _text_field(b, "email", ""),
            _text_field(b, "profile", "Available"),
            bool(b.get("logged_in", True)),
        ).to_json(),
    )
    on("DELETE", "/extensions/{number}", lambda s, b, r: s.directory.delete_extension(r.match_info["number"]))
    on("POST", "/agents", lambda s, b, r: s.directory.add_agent(_text_field(b, "queue"), _text_field(b, "number")))
    on(
        "DELETE",
        "/agents/{queue}/{number}",
        lambda s, b, r: s.directory.remove_agent(r.match_info["queue"], r.match_info["number"]),
    )
    on("POST", "/fail", lambda s, b, r: {"pending": s.faults.add(_directory_fault(b, short=False))})
    on("POST", "/partial", lambda s, b, r: {"pending": s.faults.add(_directory_fault(b, short=True))})
    on("POST", "/generate", lambda s, b, r: _generate(s.directory, b))


def add_routes(app: web.Application, state_key: web.AppKey[Any], drop: Callable[[Any], Awaitable[int]]) -> None:
    c = Control(state_key, drop)
    app.router.add_post("/sim/play", c.play)
    app.router.add_get("/sim/scenarios", c.scenario_list)
    app.router.add_get("/sim/calls", c.calls)
    app.router.add_get("/sim/calls/{number}", c.call)
    app.router.add_post("/sim/ws/drop", c.ws_drop)
    app.router.add_post("/sim/ws/inject", c.ws_inject)
    app.router.add_post("/sim/ws/lose", c.ws_lose)
    app.router.add_post("/sim/calllog", c.call_log)
    app.router.add_post("/sim/fail", c.fail)
    app.router.add_post("/sim/token/expire", c.token_expire)
    app.router.add_post("/sim/load", c.load)
    app.router.add_get("/sim/load", c.load_status)
    _add_directory_routes(app, state_key)
    app.on_shutdown.append(c.close)
