"""The simulated PBX directory: users, queues, agents, queue login history, served as 3CX V20 XAPI.

    directory = Directory()                      # 101-103, queue 800 with agents 101, 102
    directory = Directory.generate(2000, 100)    # a large PBX for the benchmark
    add_routes(app, directory)

XAPI (OData v4, 3cx-v20.md §5): `GET /xapi/v1/Users` (`$select`, `$filter`, `$orderby`, `$top`, `$skip`,
`$count`), `Users({Id})`, `Queues` (`$expand=Agents`), `Queues({Id})`, `Queues({Id})/Agents`, the writes
`PATCH Users({Id})` (CurrentProfileName, QueueStatus, names, email) and `PATCH Queues({Id})` (Agents), and
`ReportAgentLoginHistory/Pbx.GetAgentLoginHistoryData(clientTimeZone=…,startDt=…,endDt=…,queueDnStr=…,
agentDnStr=…)`: one row per queue, agent and day a login session touches (`loggedInDt`, `LoggedOutDt`,
null while the session is open). All need a Bearer token: the live one when a `simulator.auth.Tokens`
is stored in the application, any Bearer otherwise.

Control (no token): `GET /sim/directory`, `POST /sim/directory/{profile,queue-login,queue-status,
extensions,agents,fail,partial,generate}`, `DELETE /sim/directory/extensions/{number}`,
`DELETE /sim/directory/agents/{queue}/{number}`.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from .auth import Tokens

PROFILES = ("Available", "Away", "Out of office", "Custom 1", "Custom 2")
LOGGED_IN = "LoggedIn"
LOGGED_OUT = "LoggedOut"
TARGETS = ("Users", "Queues", "Agents", "ReportAgentLoginHistory")

_FIRST = ("Ivan", "Maria", "Oleg", "Anna", "Pavel", "Olga", "Sergey", "Elena", "Dmitry", "Irina", "Nikolay", "Tatiana")
_LAST = ("Petrov", "Sidorova", "Smirnov", "Kuznetsova", "Volkov", "Popova", "Sokolov", "Lebedeva", "Kozlov",
         "Novikova", "Morozov", "Pavlova")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class User:
    id: int
    number: str
    first_name: str
    last_name: str
    email: str = ""
    profile: str = "Available"
    queue_status: str = LOGGED_IN
    registered: bool = True

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def to_json(self) -> dict[str, Any]:
        return {"Id": self.id, "Number": self.number, "FirstName": self.first_name, "LastName": self.last_name,
                "DisplayName": self.display_name, "EmailAddress": self.email, "Mobile": "", "Enabled": True,
                "IsRegistered": self.registered, "CurrentProfileName": self.profile, "QueueStatus": self.queue_status,
                "Tags": []}


@dataclass
class Queue:
    id: int
    number: str
    name: str
    agents: list[str] = field(default_factory=list)  # extension numbers, in membership order

    def to_json(self) -> dict[str, Any]:
        return {"Id": self.id, "Number": self.number, "Name": self.name, "PollingStrategy": "RingAll",
                "RingTimeout": 20, "MasterTimeout": 300, "WrapUpTime": 0, "IsRegistered": True}


@dataclass
class Session:
    """One login of an agent to one queue (what ReportAgentLoginHistory is built from)."""

    queue: str
    agent: str
    logged_in: dt.datetime
    logged_out: dt.datetime | None = None


@dataclass
class _Fault:
    count: int
    target: str  # one of TARGETS, or "" for any
    status: int = 503

    def matches(self, target: str) -> bool:
        return self.count > 0 and self.target in ("", target)


class DirectoryError(Exception):
    """A control request the directory cannot apply (unknown extension, duplicate, …)."""


class Directory:
    """All directory state. Single-threaded (asyncio), mutated by the control API or by tests directly."""

    def __init__(self, users: Iterable[User] | None = None, queues: Iterable[Queue] | None = None,
                 sessions: Iterable[Session] | None = None) -> None:
        if users is None and queues is None:
            users = [User(1, "101", "Ivan", "Petrov", "ivan.petrov@example.com"),
                     User(2, "102", "Maria", "Sidorova", "maria.sidorova@example.com"),
                     User(3, "103", "Oleg", "Smirnov", "oleg.smirnov@example.com")]
            queues = [Queue(1, "800", "Sales", ["101", "102"])]
        self.users: dict[str, User] = {u.number: u for u in users or ()}
        self.queues: dict[str, Queue] = {q.number: q for q in queues or ()}
        self.sessions: list[Session] = list(sessions) if sessions is not None else self._open_all(_utcnow())
        self._next_user_id = max((u.id for u in self.users.values()), default=0) + 1
        self._next_queue_id = max((q.id for q in self.queues.values()), default=0) + 1
        self._faults: list[_Fault] = []
        self._partials: list[_Fault] = []
        self._listeners: list[Callable[[str], None]] = []
        self.requests = 0

    @classmethod
    def generate(cls, extensions: int = 2000, queues: int = 100, agents_per_queue: int = 20) -> Directory:
        """A large deterministic PBX: extensions 10000…, queues 8000…, each queue with a window of agents."""
        users = [User(i + 1, str(10000 + i), _FIRST[i % len(_FIRST)], f"{_LAST[(i // 7) % len(_LAST)]}-{i}",
                      f"user{10000 + i}@example.com", PROFILES[i % 3], LOGGED_OUT if i % 11 == 0 else LOGGED_IN)
                 for i in range(extensions)]
        numbers = [u.number for u in users]
        built = []
        for q in range(queues):
            start = (q * agents_per_queue) % max(1, extensions)
            agents = [numbers[(start + k) % extensions] for k in range(min(agents_per_queue, extensions))]
            built.append(Queue(q + 1, str(8000 + q), f"Queue {q + 1}", agents))
        return cls(users, built)

    def _open_all(self, now: dt.datetime) -> list[Session]:
        return [Session(q.number, a, now - dt.timedelta(hours=1)) for q in self.queues.values() for a in q.agents
                if self.users.get(a) is not None and self.users[a].queue_status == LOGGED_IN]

    # --- observers -------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[str], None]) -> None:
        """`listener(number)` after every change to an extension (e.g. to announce it on Call Control)."""
        self._listeners.append(listener)

    def _changed(self, number: str) -> None:
        for listener in self._listeners:
            listener(number)

    # --- mutations -------------------------------------------------------------------------
    def user(self, number: str) -> User:
        found = self.users.get(number)
        if found is None:
            raise DirectoryError(f"no extension {number}")
        return found

    def queue(self, number: str) -> Queue:
        found = self.queues.get(number)
        if found is None:
            raise DirectoryError(f"no queue {number}")
        return found

    def set_profile(self, number: str, profile: str) -> None:
        if not profile:
            raise DirectoryError("profile must not be empty")
        self.user(number).profile = profile
        self._changed(number)

    def set_queue_login(self, number: str, logged_in: bool) -> None:
        """Global queue login (`QueueStatus`): also opens or closes the agent's session in each of its queues."""
        user = self.user(number)
        user.queue_status = LOGGED_IN if logged_in else LOGGED_OUT
        for queue in self.queues.values():
            if number in queue.agents:
                self._set_session(queue.number, number, logged_in)
        self._changed(number)

    def set_queue_status(self, number: str, queue: str, logged_in: bool) -> None:
        """Login to one queue: only the login history shows it (XAPI has no per-queue field)."""
        self.user(number)
        if number not in self.queue(queue).agents:
            raise DirectoryError(f"{number} is not an agent of queue {queue}")
        self._set_session(queue, number, logged_in)
        self._changed(number)

    def _set_session(self, queue: str, agent: str, logged_in: bool) -> None:
        now = _utcnow()
        open_ = [s for s in self.sessions if s.queue == queue and s.agent == agent and s.logged_out is None]
        if logged_in and not open_:
            self.sessions.append(Session(queue, agent, now))
        elif not logged_in:
            for session in open_:
                session.logged_out = now

    def add_extension(self, number: str, first_name: str, last_name: str = "", email: str = "",
                      profile: str = "Available", logged_in: bool = True) -> User:
        if not number or not number.isdigit():
            raise DirectoryError(f"extension number must be digits, got {number!r}")
        if number in self.users or number in self.queues:
            raise DirectoryError(f"number {number} is taken")
        user = User(self._next_user_id, number, first_name, last_name, email, profile,
                    LOGGED_IN if logged_in else LOGGED_OUT)
        self._next_user_id += 1
        self.users[number] = user
        self._changed(number)
        return user

    def delete_extension(self, number: str) -> None:
        self.user(number)
        for queue in self.queues.values():
            if number in queue.agents:
                self.remove_agent(queue.number, number)
        del self.users[number]
        self._changed(number)

    def add_agent(self, queue: str, number: str) -> None:
        target = self.queue(queue)
        user = self.user(number)
        if number in target.agents:
            raise DirectoryError(f"{number} is already an agent of queue {queue}")
        target.agents.append(number)
        if user.queue_status == LOGGED_IN:
            self._set_session(queue, number, True)
        self._changed(number)

    def remove_agent(self, queue: str, number: str) -> None:
        target = self.queue(queue)
        if number not in target.agents:
            raise DirectoryError(f"{number} is not an agent of queue {queue}")
        target.agents.remove(number)
        self._set_session(queue, number, False)
        self._changed(number)

    def add_queue(self, number: str, name: str, agents: Iterable[str] = ()) -> Queue:
        if number in self.queues or number in self.users:
            raise DirectoryError(f"number {number} is taken")
        queue = Queue(self._next_queue_id, number, name)
        self._next_queue_id += 1
        self.queues[number] = queue
        for agent in agents:
            self.add_agent(number, agent)
        return queue

    def fail(self, count: int, target: str = "", status: int = 503) -> None:
        """The next `count` XAPI requests for `target` (any when empty) answer `status`."""
        self._faults.append(_Fault(count, _check_target(target), status))

    def partial(self, count: int, target: str = "Users") -> None:
        """The next `count` answers for `target` page as if its last row were missing, `@odata.count` still
        counting it (a PBX answering short)."""
        self._partials.append(_Fault(count, _check_target(target)))

    def _take(self, faults: list[_Fault], target: str) -> _Fault | None:
        for fault in faults:
            if fault.matches(target):
                fault.count -= 1
                if fault.count <= 0:
                    faults.remove(fault)
                return fault
        return None

    # --- reads -----------------------------------------------------------------------------
    def agent_json(self, number: str) -> dict[str, Any]:
        user = self.users.get(number)
        return {"Id": user.id if user else 0, "Number": number, "Name": user.display_name if user else number,
                "SkillGroup": "1", "Tags": []}

    def queue_json(self, queue: Queue, expand_agents: bool) -> dict[str, Any]:
        row = queue.to_json()
        if expand_agents:
            row["Agents"] = [self.agent_json(a) for a in queue.agents]
        return row

    def history(self, start: dt.datetime, end: dt.datetime, zone: dt.tzinfo, queues: set[str],
                agents: set[str]) -> list[dict[str, Any]]:
        """Report rows: one per session and local day it overlaps within [start, end)."""
        now = _utcnow()
        rows = []
        for s in self.sessions:
            if (queues and s.queue not in queues) or (agents and s.agent not in agents):
                continue
            until = s.logged_out or now
            if until < start or s.logged_in >= end:
                continue
            user = self.users.get(s.agent)
            day = s.logged_in.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
            while day.astimezone(dt.timezone.utc) <= until:
                next_day = (day + dt.timedelta(days=1)).replace(hour=0)
                piece_in = max(s.logged_in, day.astimezone(dt.timezone.utc))
                last_piece = next_day.astimezone(dt.timezone.utc) > until
                piece_out = s.logged_out if last_piece else next_day.astimezone(dt.timezone.utc)
                if piece_in < end and (piece_out or now) >= start:
                    rows.append({
                        "QueueNo": s.queue, "AgentNo": s.agent,
                        "Agent": f"{s.agent} {user.display_name}" if user else s.agent,
                        "Day": _iso(day, zone), "loggedInDt": _iso(piece_in, zone),
                        "LoggedOutDt": _iso(piece_out, zone) if piece_out else None,
                        "LoggedInInterval": _duration((piece_out or now) - piece_in),
                        "LoggedInDayInterval": _duration((piece_out or now) - piece_in),
                        "LoggedInTotalInterval": _duration(until - s.logged_in),
                        "TalkingInterval": "PT0S", "TalkingDayInterval": "PT0S", "TalkingTotalInterval": "PT0S"})
                day = next_day
        return rows

    def snapshot(self) -> dict[str, Any]:
        return {"users": [u.to_json() for u in self.users.values()],
                "queues": [self.queue_json(q, True) for q in self.queues.values()],
                "sessions": [{"queue": s.queue, "agent": s.agent, "logged_in": s.logged_in.isoformat(),
                              "logged_out": s.logged_out.isoformat() if s.logged_out else None}
                             for s in self.sessions]}


def _check_target(target: str) -> str:
    if target and target not in TARGETS:
        raise DirectoryError(f"target must be one of {', '.join(TARGETS)} or empty, got {target!r}")
    return target


def _iso(moment: dt.datetime, zone: dt.tzinfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds").replace("+00:00", "Z")


def _duration(delta: dt.timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return ("P" + (f"{days}D" if days else "") + "T" + (f"{hours}H" if hours else "")
            + (f"{minutes}M" if minutes else "") + f"{secs}S")


# --- OData query options ---------------------------------------------------------------------

class ODataError(Exception):
    """A query the simulated XAPI rejects with 400, as the PBX does."""


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<par>[()])|(?P<word>[A-Za-z_][\w/.]*))")
_COMPARE = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
            "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b}
_FUNCS = {"startswith": lambda a, b: str(a).startswith(str(b)), "endswith": lambda a, b: str(a).endswith(str(b)),
          "contains": lambda a, b: str(b) in str(a)}


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ODataError(f"cannot parse $filter at: {text[pos:pos + 20]!r}")
        pos = match.end()
        if match.group("str") is not None:
            out.append(("value", match.group("str")[1:-1].replace("''", "'")))
        elif match.group("num") is not None:
            number = match.group("num")
            out.append(("value", float(number) if "." in number else int(number)))
        elif match.group("par") is not None:
            out.append((match.group("par"), None))
        else:
            word = match.group("word")
            literal = {"true": True, "false": False, "null": None}
            out.append(("value", literal[word]) if word in literal else ("word", word))
        if text[pos:pos + 1] == ",":
            out.append((",", None))
            pos += 1
    return out


class _Filter:
    """`Field op literal` joined by and/or/not and parentheses; startswith/endswith/contains(Field,'x')."""

    def __init__(self, text: str) -> None:
        self._tokens = _tokens(text)
        self._pos = 0
        self._tree = self._or()
        if self._pos != len(self._tokens):
            raise ODataError("unexpected text at the end of $filter")

    def _peek(self) -> tuple[str, Any]:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else ("end", None)

    def _next(self) -> tuple[str, Any]:
        token = self._peek()
        self._pos += 1
        return token

    def _or(self) -> Callable[[dict[str, Any]], bool]:
        left = self._and()
        while self._peek() == ("word", "or"):
            self._next()
            right, prev = self._and(), left
            left = lambda row, l=prev, r=right: l(row) or r(row)  # noqa: E731
        return left

    def _and(self) -> Callable[[dict[str, Any]], bool]:
        left = self._unary()
        while self._peek() == ("word", "and"):
            self._next()
            right, prev = self._unary(), left
            left = lambda row, l=prev, r=right: l(row) and r(row)  # noqa: E731
        return left

    def _unary(self) -> Callable[[dict[str, Any]], bool]:
        kind, value = self._next()
        if (kind, value) == ("word", "not"):
            inner = self._unary()
            return lambda row: not inner(row)
        if kind == "(":
            inner = self._or()
            if self._next()[0] != ")":
                raise ODataError("missing ) in $filter")
            return inner
        if kind == "word" and value in _FUNCS and self._peek()[0] == "(":
            self._next()
            field_kind, name = self._next()
            comma = self._next()
            literal_kind, literal = self._next()
            if field_kind != "word" or comma[0] != "," or literal_kind != "value" or self._next()[0] != ")":
                raise ODataError(f"{value}(Field,'text') expected in $filter")
            func = _FUNCS[value]
            return lambda row: row.get(name) is not None and func(row.get(name), literal)
        if kind != "word":
            raise ODataError("a property name expected in $filter")
        op_kind, op = self._next()
        literal_kind, literal = self._next()
        if op_kind != "word" or op not in _COMPARE or literal_kind != "value":
            raise ODataError(f"'{value} <eq|ne|gt|ge|lt|le> <literal>' expected in $filter")
        compare = _COMPARE[op]

        def test(row: dict[str, Any]) -> bool:
            actual = row.get(value)
            if actual is None or literal is None:
                return compare(actual, literal) if op in ("eq", "ne") else False
            try:
                return bool(compare(actual, literal))
            except TypeError:
                return False
        return test

    def __call__(self, row: dict[str, Any]) -> bool:
        return self._tree(row)


def apply_query(rows: list[dict[str, Any]], query: Any, fields: set[str],
                drop_last: bool = False) -> tuple[list[dict[str, Any]], int]:
    """$filter, $orderby, $skip, $top, $select on `rows`; returns the page and the filtered count.

    `drop_last` pages as if the last row did not exist while the count still includes it (a short answer).
    """
    unknown = set(query) - {"$filter", "$orderby", "$skip", "$top", "$select", "$count", "$expand", "$search"}
    if unknown:
        raise ODataError(f"unknown query option {sorted(unknown)[0]}")
    if query.get("$filter"):
        test = _Filter(query["$filter"])
        rows = [row for row in rows if test(row)]
    for clause in reversed([c.strip() for c in query.get("$orderby", "").split(",") if c.strip()]):
        name, _, direction = clause.partition(" ")
        if name not in fields:
            raise ODataError(f"Could not find a property named '{name}'")
        if direction.strip().lower() not in ("", "asc", "desc"):
            raise ODataError(f"bad $orderby direction {direction!r}")
        rows = sorted(rows, key=lambda row: (row.get(name) is not None, row.get(name) if row.get(name) is not None else 0),
                      reverse=direction.strip().lower() == "desc")
    total = len(rows)
    if drop_last:
        rows = rows[:-1]
    try:
        skip = int(query.get("$skip", "0"))
        top = int(query["$top"]) if "$top" in query else None
    except ValueError:
        raise ODataError("$top and $skip must be whole numbers") from None
    if skip < 0 or (top is not None and top < 0):
        raise ODataError("$top and $skip must not be negative")
    rows = rows[skip:] if top is None else rows[skip:skip + top]
    if query.get("$select"):
        selected = [s.strip() for s in query["$select"].split(",") if s.strip()]
        for name in selected:
            if name not in fields:
                raise ODataError(f"Could not find a property named '{name}'")
        keep = set(selected) | ({"Agents"} if "Agents" in fields else set())
        rows = [{k: v for k, v in row.items() if k in keep} for row in rows]
    return rows, total


# --- HTTP ------------------------------------------------------------------------------------

DIRECTORY_KEY = web.AppKey("tcxhooks_directory", Directory)
_USER_FIELDS = set(User(0, "", "", "").to_json())
_QUEUE_FIELDS = set(Queue(0, "", "").to_json()) | {"Agents"}
_AGENT_FIELDS = {"Id", "Number", "Name", "SkillGroup", "Tags"}
_HISTORY_FIELDS = {"QueueNo", "AgentNo", "Agent", "Day", "loggedInDt", "LoggedOutDt", "LoggedInInterval",
                   "LoggedInDayInterval", "LoggedInTotalInterval", "TalkingInterval", "TalkingDayInterval",
                   "TalkingTotalInterval"}


def _odata_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _authorized(request: web.Request) -> bool:
    header = request.headers.get("Authorization")
    tokens = next((v for v in request.app.values() if isinstance(v, Tokens)), None)
    if tokens is not None:
        return tokens.valid(header)
    return bool(header and header.startswith("Bearer ") and header[len("Bearer "):].strip())


def _xapi(target: str, handler: Callable[[web.Request, Directory], dict[str, Any]]) -> Callable[..., Any]:
    async def serve(request: web.Request) -> web.StreamResponse:
        if not _authorized(request):
            return web.json_response({"error": "unauthorized", "error_description": "invalid or expired token"},
                                     status=401)
        directory = request.app[DIRECTORY_KEY]
        directory.requests += 1
        fault = directory._take(directory._faults, target)
        if fault is not None:
            return _odata_error(fault.status, "SIMULATED", f"simulated failure of {target}")
        try:
            body = handler(request, directory)
        except ODataError as exc:
            return _odata_error(400, "BadRequest", str(exc))
        except KeyError as exc:
            return _odata_error(404, "WARNINGS.XAPI.NOT_FOUND", f"{target} {exc.args[0]} not found")
        return web.Response(text=json.dumps(body, ensure_ascii=False), content_type="application/json",
                            charset="utf-8")
    return serve


def _patch(target: str, apply: Callable[[web.Request, Directory, dict[str, Any]], None]) -> Callable[..., Any]:
    async def serve(request: web.Request) -> web.StreamResponse:
        if not _authorized(request):
            return web.json_response({"error": "unauthorized", "error_description": "invalid or expired token"},
                                     status=401)
        directory = request.app[DIRECTORY_KEY]
        try:
            apply(request, directory, await _control_body(request))
        except (ODataError, DirectoryError) as exc:
            return _odata_error(400, "BadRequest", str(exc))
        except KeyError as exc:
            return _odata_error(404, "WARNINGS.XAPI.NOT_FOUND", f"{target} {exc.args[0]} not found")
        return web.Response(status=204)
    return serve


_USER_PATCH = {"CurrentProfileName", "QueueStatus", "FirstName", "LastName", "EmailAddress"}


def _patch_user(request: web.Request, directory: Directory, body: dict[str, Any]) -> None:
    """`PATCH /Users({Id})` with the fields the simulator models (3cx-v20.md §5.2)."""
    key = _key(request.match_info["key"])
    user = next((u for u in directory.users.values() if (u.id == key if isinstance(key, int) else u.number == key)),
                None)
    if user is None:
        raise KeyError(request.match_info["key"])
    unsupported = sorted(set(body) - _USER_PATCH)
    if unsupported:
        raise ODataError(f"the simulator cannot change {', '.join(unsupported)}")
    if any(not isinstance(body[k], str) for k in body):
        raise ODataError("values must be strings")
    if "QueueStatus" in body and body["QueueStatus"] not in (LOGGED_IN, LOGGED_OUT):
        raise ODataError(f"QueueStatus must be {LOGGED_IN} or {LOGGED_OUT}")
    renamed = False
    for name, attribute in (("FirstName", "first_name"), ("LastName", "last_name"), ("EmailAddress", "email")):
        if name in body:
            setattr(user, attribute, body[name])
            renamed = True
    if renamed:
        directory._changed(user.number)
    if "CurrentProfileName" in body:
        directory.set_profile(user.number, body["CurrentProfileName"])
    if "QueueStatus" in body:
        directory.set_queue_login(user.number, body["QueueStatus"] == LOGGED_IN)


def _patch_queue(request: web.Request, directory: Directory, body: dict[str, Any]) -> None:
    """`PATCH /Queues({Id})` with the whole `Agents` array (membership changes, 3cx-v20.md §5.3)."""
    queue = _find_queue(request, directory)
    agents = body.get("Agents")
    if set(body) != {"Agents"} or not isinstance(agents, list) or not all(
            isinstance(a, dict) and isinstance(a.get("Number"), str) for a in agents):
        raise ODataError('the simulator changes queues only by {"Agents": [{"Number": "…"}, …]}')
    wanted = [a["Number"] for a in agents]
    for number in wanted:
        directory.user(number)
    for number in [a for a in queue.agents if a not in wanted]:
        directory.remove_agent(queue.number, number)
    for number in wanted:
        if number not in queue.agents:
            directory.add_agent(queue.number, number)


def _context(request: web.Request, name: str) -> str:
    return f"{request.scheme}://{request.host}/xapi/v1/$metadata#{name}"


def _collection(request: web.Request, target: str, name: str, rows: list[dict[str, Any]],
                fields: set[str]) -> dict[str, Any]:
    directory = request.app[DIRECTORY_KEY]
    short = directory._take(directory._partials, target) is not None
    page, total = apply_query(rows, request.query, fields, drop_last=short)
    body: dict[str, Any] = {"@odata.context": _context(request, name)}
    if request.query.get("$count", "").lower() == "true":
        body["@odata.count"] = total
    body["value"] = page
    return body


def _users(request: web.Request, directory: Directory) -> dict[str, Any]:
    if request.query.get("$expand"):
        raise ODataError("Users supports no $expand here")
    rows = [u.to_json() for u in directory.users.values()]
    return _collection(request, "Users", "Users", rows, _USER_FIELDS)


def _user(request: web.Request, directory: Directory) -> dict[str, Any]:
    key = _key(request.match_info["key"])
    user = next((u for u in directory.users.values() if (u.id == key if isinstance(key, int) else u.number == key)),
                None)
    if user is None:
        raise KeyError(request.match_info["key"])
    row = user.to_json()
    if request.query.get("$select"):
        row = apply_query([row], {"$select": request.query["$select"]}, _USER_FIELDS)[0][0]
    return {"@odata.context": _context(request, "Users/$entity"), **row}


def _expand_agents(request: web.Request) -> bool:
    expand = request.query.get("$expand", "").strip()
    if expand not in ("", "Agents"):
        raise ODataError(f"Queues supports $expand=Agents only, got {expand!r}")
    return expand == "Agents"


def _queues(request: web.Request, directory: Directory) -> dict[str, Any]:
    expand = _expand_agents(request)
    rows = [directory.queue_json(q, expand) for q in directory.queues.values()]
    return _collection(request, "Queues", "Queues", rows, _QUEUE_FIELDS)


def _find_queue(request: web.Request, directory: Directory) -> Queue:
    key = _key(request.match_info["key"])
    queue = next((q for q in directory.queues.values() if (q.id == key if isinstance(key, int) else q.number == key)),
                 None)
    if queue is None:
        raise KeyError(request.match_info["key"])
    return queue


def _queue(request: web.Request, directory: Directory) -> dict[str, Any]:
    row = directory.queue_json(_find_queue(request, directory), _expand_agents(request))
    return {"@odata.context": _context(request, "Queues/$entity"), **row}


def _agents(request: web.Request, directory: Directory) -> dict[str, Any]:
    rows = [directory.agent_json(a) for a in _find_queue(request, directory).agents]
    return _collection(request, "Agents", "Agents", rows, _AGENT_FIELDS)


_CALL = re.compile(r"^Pbx\.GetAgentLoginHistoryData\((?P<args>.*)\)$")
_ARG = re.compile(r"\s*(\w+)\s*=\s*('(?:[^']|'')*'|[^,]*)\s*(?:,|$)")


def _call_args(text: str) -> dict[str, str]:
    args: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _ARG.match(text, pos)
        if not match or match.end() == pos:
            raise ODataError(f"cannot parse function arguments at {text[pos:pos + 20]!r}")
        value = match.group(2).strip()
        args[match.group(1)] = value[1:-1].replace("''", "'") if value.startswith("'") else value
        pos = match.end()
    return args


def _zone(text: str) -> dt.tzinfo:
    if text in ("", "UTC", "Z"):
        return dt.timezone.utc
    offset = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text)
    if offset:
        sign = 1 if offset.group(1) == "+" else -1
        return dt.timezone(sign * dt.timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3))))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ODataError(f"unknown clientTimeZone {text!r}") from None


def _moment(name: str, text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ODataError(f"{name} must be an Edm.DateTimeOffset, got {text!r}") from None
    if moment.tzinfo is None:
        raise ODataError(f"{name} needs an offset, got {text!r}")
    return moment.astimezone(dt.timezone.utc)


def _history(request: web.Request, directory: Directory) -> dict[str, Any]:
    match = _CALL.match(request.match_info["call"])
    if match is None:
        raise KeyError(request.match_info["call"])
    args = _call_args(match.group("args"))
    required = ("clientTimeZone", "startDt", "endDt", "queueDnStr", "agentDnStr")
    missing = [name for name in required if name not in args]
    if missing:
        raise ODataError(f"GetAgentLoginHistoryData needs {', '.join(missing)}")
    rows = directory.history(_moment("startDt", args["startDt"]), _moment("endDt", args["endDt"]),
                             _zone(args["clientTimeZone"]),
                             {q for q in args["queueDnStr"].split(",") if q}, {a for a in args["agentDnStr"].split(",") if a})
    return _collection(request, "ReportAgentLoginHistory", "Collection(Pbx.AgentLoginHistory)", rows,
                       _HISTORY_FIELDS)


def _key(text: str) -> int | str:
    """`17` → 17; `Number='101'` → '101'."""
    if text.isdigit():
        return int(text)
    match = re.fullmatch(r"Number='((?:[^']|'')*)'", text)
    if match is None:
        raise ODataError(f"bad key {text!r}")
    return match.group(1).replace("''", "'")


# --- control ---------------------------------------------------------------------------------

async def _control_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DirectoryError("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise DirectoryError("body must be a JSON object")
    return body


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


def _count(body: dict[str, Any]) -> int:
    try:
        count = int(body.get("count", 1))
    except (TypeError, ValueError):
        raise DirectoryError("count must be a whole number") from None
    if count < 1:
        raise DirectoryError("count must be at least 1")
    return count


def _status(body: dict[str, Any]) -> int:
    try:
        status = int(body.get("status", 503))
    except (TypeError, ValueError):
        raise DirectoryError("status must be an HTTP status code") from None
    if not 400 <= status <= 599:
        raise DirectoryError("status must be from 400 to 599")
    return status


def _control(action: Callable[[Directory, dict[str, Any], web.Request], Any]) -> Callable[..., Any]:
    async def serve(request: web.Request) -> web.Response:
        directory = request.app[DIRECTORY_KEY]
        try:
            body = await _control_body(request) if request.method == "POST" else {}
            result = action(directory, body, request)
        except DirectoryError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(result if result is not None else {"ok": True})
    return serve


def _generate(directory: Directory, body: dict[str, Any], _: web.Request) -> dict[str, int]:
    try:
        extensions, queues = int(body.get("extensions", 2000)), int(body.get("queues", 100))
        per_queue = int(body.get("agents_per_queue", 20))
    except (TypeError, ValueError):
        raise DirectoryError("extensions, queues and agents_per_queue must be whole numbers") from None
    if not (0 <= extensions <= 100_000 and 0 <= queues <= 10_000 and 0 <= per_queue <= 1000):
        raise DirectoryError("extensions ≤ 100000, queues ≤ 10000, agents_per_queue ≤ 1000")
    fresh = Directory.generate(extensions, queues, per_queue)
    directory.users, directory.queues, directory.sessions = fresh.users, fresh.queues, fresh.sessions
    directory._next_user_id, directory._next_queue_id = fresh._next_user_id, fresh._next_queue_id
    return {"extensions": len(directory.users), "queues": len(directory.queues)}


def add_routes(app: web.Application, directory: Directory) -> None:
    """Registers the XAPI directory endpoints and the `/sim/directory` control API on `app`."""
    app[DIRECTORY_KEY] = directory
    app.router.add_get("/xapi/v1/Users", _xapi("Users", _users))
    app.router.add_get("/xapi/v1/Users({key})", _xapi("Users", _user))
    app.router.add_get("/xapi/v1/Queues", _xapi("Queues", _queues))
    app.router.add_get("/xapi/v1/Queues({key})", _xapi("Queues", _queue))
    app.router.add_get("/xapi/v1/Queues({key})/Agents", _xapi("Agents", _agents))
    app.router.add_patch("/xapi/v1/Users({key})", _patch("Users", _patch_user))
    app.router.add_patch("/xapi/v1/Queues({key})", _patch("Queues", _patch_queue))
    app.router.add_get("/xapi/v1/ReportAgentLoginHistory/{call:.+}", _xapi("ReportAgentLoginHistory", _history))

    add = app.router.add_post
    app.router.add_get("/sim/directory", _control(lambda d, b, r: d.snapshot()))
    add("/sim/directory/profile", _control(lambda d, b, r: d.set_profile(_text_field(b, "number"),
                                                                          _text_field(b, "profile"))))
    add("/sim/directory/queue-login", _control(lambda d, b, r: d.set_queue_login(_text_field(b, "number"),
                                                                                  _in_out(b))))
    add("/sim/directory/queue-status", _control(lambda d, b, r: d.set_queue_status(
        _text_field(b, "number"), _text_field(b, "queue"), _in_out(b))))
    add("/sim/directory/extensions", _control(lambda d, b, r: d.add_extension(
        _text_field(b, "number"), _text_field(b, "first_name", ""), _text_field(b, "last_name", ""),
        _text_field(b, "email", ""), _text_field(b, "profile", "Available"),
        bool(b.get("logged_in", True))).to_json()))
    app.router.add_delete("/sim/directory/extensions/{number}", _control(
        lambda d, b, r: d.delete_extension(r.match_info["number"])))
    add("/sim/directory/agents", _control(lambda d, b, r: d.add_agent(_text_field(b, "queue"),
                                                                       _text_field(b, "number"))))
    app.router.add_delete("/sim/directory/agents/{queue}/{number}", _control(
        lambda d, b, r: d.remove_agent(r.match_info["queue"], r.match_info["number"])))
    add("/sim/directory/fail", _control(lambda d, b, r: d.fail(_count(b), _text_field(b, "target", ""),
                                                               _status(b))))
    add("/sim/directory/partial", _control(lambda d, b, r: d.partial(_count(b), _text_field(b, "target", "Users"))))
    add("/sim/directory/generate", _control(_generate))
