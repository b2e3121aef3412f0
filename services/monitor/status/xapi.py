"""Typed reads of the XAPI directory (docs/3cx.md §5.2, §5.3) and the agent login history report.

Every read pages with `$top`/`$skip` over a stable `$orderby=Id`, asks `$count=true` and checks that
the rows add up to it (a short page is taken as the server's own page size and paging goes on from
where the rows end; an empty page before the count is reached is a partial answer), so a partial
answer, a PBX that changed between pages or a garbled row raises `XapiError` naming the request
instead of returning a list that would read as deletions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import PbxError

BASE = "/xapi/v1"
USER_FIELDS = "Id,Number,FirstName,LastName,DisplayName,EmailAddress,CurrentProfileName,QueueStatus"
QUEUE_FIELDS = "Id,Number,Name"
LOGGED_IN = "LoggedIn"
# More rows than any PBX directory or day of agent logins holds: a count above it is refused before
# paging, so a PBX claiming billions of rows cannot keep the poller paging and piling them up.
MAX_ROWS = 100_000
LOGGED_OUT = "LoggedOut"


class JsonGetter(Protocol):
    """What the status poller needs from the monitor's `PbxClient`: decoded JSON or `PbxError`."""

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any: ...


class XapiError(Exception):
    """A read failed; the message names the request and what was wrong. `status` is the HTTP status if any."""

    def __init__(self, what: str, detail: str, status: int | None = None) -> None:
        super().__init__(f"XAPI {what}: {detail}")
        self.what = what
        self.status = status


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    number: str
    name: str
    email: str
    profile: str
    queue_status: str


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    number: str
    name: str
    agents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoginRow:
    queue: str
    agent: str
    logged_in: dt.datetime
    logged_out: dt.datetime | None  # None while the session is open


def _text(row: Mapping[str, Any], key: str, where: str, required: bool = False) -> str:
    value = row.get(key)
    if type(value) is str:
        text = value.strip()
    elif value is None:
        text = ""
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        raise ValueError(f"{where}: {key} is not text")
    if required and not text:
        raise ValueError(f"{where}: {key} {'missing' if value is None else 'empty'}")
    return text


def _int(row: Mapping[str, Any], key: str, where: str) -> int:
    value = row.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{where}: {key} is not a whole number")
    return value


def _moment(row: Mapping[str, Any], key: str, where: str, required: bool) -> dt.datetime | None:
    value = row.get(key)
    if value is None or value == "":
        if required:
            raise ValueError(f"{where}: {key} missing")
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key} is not a date-time")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{where}: {key} is not a date-time: {value[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _odata_moment(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Xapi:
    def __init__(self, pbx: JsonGetter, page_size: int = 500, timeout: float = 10.0) -> None:
        self._pbx = pbx
        self._page_size = page_size
        self._timeout = timeout

    async def _get(self, what: str, path: str, params: Mapping[str, str]) -> Mapping[str, Any]:
        try:
            body = await asyncio.wait_for(self._pbx.get_json(BASE + path, dict(params)), self._timeout)
        except TimeoutError:
            raise XapiError(what, f"no answer within {self._timeout:g} s") from None
        except PbxError as exc:  # HTTP status, transport, not JSON: the message names the request
            raise XapiError(what, str(exc), getattr(exc, "status", None)) from None
        if not isinstance(body, dict):
            raise XapiError(what, f"answer is not a JSON object but {type(body).__name__}")
        return body

    async def _collection(self, what: str, path: str, params: Mapping[str, str]) -> list[Mapping[str, Any]]:
        """All rows of a collection, page by page; raises unless they add up to `@odata.count`."""
        rows: list[Mapping[str, Any]] = []
        expected: int | None = None
        while True:
            page_params = {
                **params,
                "$orderby": params.get("$orderby", "Id"),
                "$top": str(self._page_size),
                "$skip": str(len(rows)),
                "$count": "true",
            }
            body = await self._get(what, path, page_params)
            page = body.get("value")
            count = body.get("@odata.count")
            if not isinstance(page, list):
                raise XapiError(what, "answer has no 'value' list")
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise XapiError(what, "answer has no @odata.count")
            if count > MAX_ROWS:
                raise XapiError(what, f"answer claims {count} rows, more than the {MAX_ROWS} a PBX holds")
            if expected is not None and count != expected:
                raise XapiError(what, f"the PBX changed while paging (count {expected} then {count})")
            expected = count
            for index, row in enumerate(page):
                if not isinstance(row, dict):
                    raise XapiError(what, f"row {len(rows) + index} is not an object")
            rows.extend(page)
            # a page shorter than $top may be the server's own page size: go on from where the rows end
            if len(rows) >= count or not page:
                break
        if len(rows) != expected:
            raise XapiError(what, f"partial answer: {len(rows)} of {expected} rows")
        return rows

    async def users(self) -> list[UserRow]:
        what = "Users"
        rows = await self._collection(what, "/Users", {"$select": USER_FIELDS})
        try:
            users = [self._user(row, f"Users row {i}") for i, row in enumerate(rows)]
        except ValueError as exc:
            raise XapiError(what, str(exc)) from None
        _unique(what, [u.number for u in users])
        return users

    @staticmethod
    def _user(row: Mapping[str, Any], where: str) -> UserRow:
        user_id, number = _int(row, "Id", where), _text(row, "Number", where, required=True)
        first, last = _text(row, "FirstName", where), _text(row, "LastName", where)
        name = f"{first} {last}".strip() or _text(row, "DisplayName", where)
        # profile and queue status are required: a field the PBX stopped sending must not read as a change
        profile = _text(row, "CurrentProfileName", where, required=True)
        queue_status = _text(row, "QueueStatus", where, required=True)
        if queue_status not in (LOGGED_IN, LOGGED_OUT):
            raise ValueError(f"{where}: QueueStatus {queue_status[:40]!r} is neither {LOGGED_IN} nor {LOGGED_OUT}")
        return UserRow(user_id, number, name, _text(row, "EmailAddress", where), profile, queue_status)

    async def queues(self) -> list[QueueRow]:
        what = "Queues?$expand=Agents"
        rows = await self._collection(what, "/Queues", {"$select": QUEUE_FIELDS, "$expand": "Agents"})
        queues = []
        try:
            for i, row in enumerate(rows):
                where = f"Queues row {i}"
                agents = row.get("Agents")
                if not isinstance(agents, list):
                    raise ValueError(f"{where}: Agents missing (was $expand=Agents honoured?)")
                numbers = []
                for k, agent in enumerate(agents):
                    if not isinstance(agent, dict):
                        raise ValueError(f"{where} agent {k} is not an object")
                    numbers.append(_text(agent, "Number", f"{where} agent {k}", required=True))
                queues.append(
                    QueueRow(
                        _int(row, "Id", where),
                        _text(row, "Number", where, required=True),
                        _text(row, "Name", where),
                        tuple(numbers),
                    )
                )
        except ValueError as exc:
            raise XapiError(what, str(exc)) from None
        _unique(what, [q.number for q in queues])
        return queues

    async def agents(self, queue_id: int) -> tuple[str, ...]:
        what = f"Queues({queue_id})/Agents"
        rows = await self._collection(what, f"/Queues({queue_id})/Agents", {"$select": "Id,Number"})
        try:
            return tuple(_text(row, "Number", f"{what} row {i}", required=True) for i, row in enumerate(rows))
        except ValueError as exc:
            raise XapiError(what, str(exc)) from None

    async def login_history(self, start: dt.datetime, end: dt.datetime) -> list[LoginRow]:
        """Every queue login session piece between `start` and `end` (all queues, all agents)."""
        what = "ReportAgentLoginHistory"
        call = (
            f"/ReportAgentLoginHistory/Pbx.GetAgentLoginHistoryData(clientTimeZone='+00:00',"
            f"startDt={_odata_moment(start)},endDt={_odata_moment(end)},queueDnStr='',agentDnStr='')"
        )
        rows = await self._collection(what, call, {"$orderby": "QueueNo,AgentNo,loggedInDt"})
        history = []
        try:
            for i, row in enumerate(rows):
                where = f"{what} row {i}"
                logged_in = _moment(row, "loggedInDt", where, required=True)
                assert logged_in is not None
                history.append(
                    LoginRow(
                        _text(row, "QueueNo", where, required=True),
                        _text(row, "AgentNo", where, required=True),
                        logged_in,
                        _moment(row, "LoggedOutDt", where, required=False),
                    )
                )
        except ValueError as exc:
            raise XapiError(what, str(exc)) from None
        return history


def _unique(what: str, numbers: list[str]) -> None:
    seen: set[str] = set()
    for number in numbers:
        if number in seen:
            raise XapiError(what, f"number {number} appears twice")
        seen.add(number)


def _open(row: LoginRow) -> bool:
    """No logout yet: empty, or a placeholder before the login (a .NET `DateTime.MinValue`)."""
    return row.logged_out is None or row.logged_out < row.logged_in


def current_logins(rows: list[LoginRow]) -> dict[tuple[str, str], bool]:
    """(queue, agent) → logged in, from each pair's latest session piece (open means logged in)."""
    latest: dict[tuple[str, str], LoginRow] = {}
    for row in rows:
        key = (row.queue, row.agent)
        seen = latest.get(key)
        if seen is None or (row.logged_in, _open(row)) > (seen.logged_in, _open(seen)):
            latest[key] = row
    return {key: _open(row) for key, row in latest.items()}
