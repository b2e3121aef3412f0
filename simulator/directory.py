"""The simulated PBX directory: users, queues, agents and queue login sessions (the data model).

    directory = Directory()                      # 101-103, queue 800 with agents 101, 102
    directory = Directory.generate(2000, 100)    # a large PBX for the benchmark

`xapidirectory.py` serves it as 3CX V20 XAPI (`Users`, `Queues`, `Queues({Id})/Agents`, the writes and
`ReportAgentLoginHistory`, docs/3cx.md §5); `control.py` changes it under `/sim/directory`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .odata import duration, iso

PROFILES = ("Available", "Away", "Out of office", "Custom 1", "Custom 2")
LOGGED_IN = "LoggedIn"
LOGGED_OUT = "LoggedOut"

_FIRST = ("Ivan", "Maria", "Oleg", "Anna", "Pavel", "Olga", "Sergey", "Elena", "Dmitry", "Irina", "Nikolay", "Tatiana")
_LAST = (
    "Petrov",
    "Sidorova",
    "Smirnov",
    "Kuznetsova",
    "Volkov",
    "Popova",
    "Sokolov",
    "Lebedeva",
    "Kozlov",
    "Novikova",
    "Morozov",
    "Pavlova",
)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
        return {
            "Id": self.id,
            "Number": self.number,
            "FirstName": self.first_name,
            "LastName": self.last_name,
            "DisplayName": self.display_name,
            "EmailAddress": self.email,
            "Mobile": "",
            "Enabled": True,
            "IsRegistered": self.registered,
            "CurrentProfileName": self.profile,
            "QueueStatus": self.queue_status,
            "Tags": [],
        }


@dataclass
class Queue:
    id: int
    number: str
    name: str
    agents: list[str] = field(default_factory=list)  # extension numbers, in membership order

    def to_json(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Number": self.number,
            "Name": self.name,
            "PollingStrategy": "RingAll",
            "RingTimeout": 20,
            "MasterTimeout": 300,
            "WrapUpTime": 0,
            "IsRegistered": True,
        }


@dataclass
class Session:
    """One login of an agent to one queue (what ReportAgentLoginHistory is built from)."""

    queue: str
    agent: str
    logged_in: dt.datetime
    logged_out: dt.datetime | None = None


class DirectoryError(Exception):
    """A control request the directory cannot apply (unknown extension, duplicate, …)."""


class Directory:
    """All directory state. Single-threaded (asyncio), mutated by the control API or by tests directly."""

    def __init__(
        self,
        users: Iterable[User] | None = None,
        queues: Iterable[Queue] | None = None,
        sessions: Iterable[Session] | None = None,
    ) -> None:
        if users is None and queues is None:
            users = [
                User(1, "101", "Ivan", "Petrov", "ivan.petrov@example.com"),
                User(2, "102", "Maria", "Sidorova", "maria.sidorova@example.com"),
                User(3, "103", "Oleg", "Smirnov", "oleg.smirnov@example.com"),
            ]
            queues = [Queue(1, "800", "Sales", ["101", "102"])]
        self.users: dict[str, User] = {u.number: u for u in users or ()}
        self.queues: dict[str, Queue] = {q.number: q for q in queues or ()}
        self.sessions: list[Session] = list(sessions) if sessions is not None else self._open_all(_utcnow())
        self._next_user_id = max((u.id for u in self.users.values()), default=0) + 1
        self._next_queue_id = max((q.id for q in self.queues.values()), default=0) + 1
        self._listeners: list[Callable[[str], None]] = []

    @classmethod
    def generate(cls, extensions: int = 2000, queues: int = 100, agents_per_queue: int = 20) -> Directory:
        """A large deterministic PBX: extensions 10000…, queues 8000…, each queue with a window of agents."""
        users = [
            User(
                i + 1,
                str(10000 + i),
                _FIRST[i % len(_FIRST)],
                f"{_LAST[(i // 7) % len(_LAST)]}-{i}",
                f"user{10000 + i}@example.com",
                PROFILES[i % 3],
                LOGGED_OUT if i % 11 == 0 else LOGGED_IN,
            )
            for i in range(extensions)
        ]
        numbers = [u.number for u in users]
        built = []
        for q in range(queues):
            start = (q * agents_per_queue) % max(1, extensions)
            agents = [numbers[(start + k) % extensions] for k in range(min(agents_per_queue, extensions))]
            built.append(Queue(q + 1, str(8000 + q), f"Queue {q + 1}", agents))
        return cls(users, built)

    def _open_all(self, now: dt.datetime) -> list[Session]:
        return [
            Session(q.number, a, now - dt.timedelta(hours=1))
            for q in self.queues.values()
            for a in q.agents
            if self.users.get(a) is not None and self.users[a].queue_status == LOGGED_IN
        ]

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

    def rename(
        self, number: str, first_name: str | None = None, last_name: str | None = None, email: str | None = None
    ) -> None:
        """Changes the names or e-mail given (None keeps a value)."""
        user = self.user(number)
        user.first_name = user.first_name if first_name is None else first_name
        user.last_name = user.last_name if last_name is None else last_name
        user.email = user.email if email is None else email
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

    def add_extension(
        self,
        number: str,
        first_name: str,
        last_name: str = "",
        email: str = "",
        profile: str = "Available",
        logged_in: bool = True,
    ) -> User:
        if not number or not number.isdigit():
            raise DirectoryError(f"extension number must be digits, got {number!r}")
        if number in self.users or number in self.queues:
            raise DirectoryError(f"number {number} is taken")
        user = User(
            self._next_user_id, number, first_name, last_name, email, profile, LOGGED_IN if logged_in else LOGGED_OUT
        )
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

    def regenerate(self, extensions: int, queues: int, agents_per_queue: int) -> None:
        """Replaces everything by `Directory.generate(...)` (subscribers stay)."""
        fresh = Directory.generate(extensions, queues, agents_per_queue)
        self.users, self.queues, self.sessions = fresh.users, fresh.queues, fresh.sessions
        self._next_user_id, self._next_queue_id = fresh._next_user_id, fresh._next_queue_id

    def add_queue(self, number: str, name: str, agents: Iterable[str] = ()) -> Queue:
        if number in self.queues or number in self.users:
            raise DirectoryError(f"number {number} is taken")
        queue = Queue(self._next_queue_id, number, name)
        self._next_queue_id += 1
        self.queues[number] = queue
        for agent in agents:
            self.add_agent(number, agent)
        return queue

    # --- reads -----------------------------------------------------------------------------
    def agent_json(self, number: str) -> dict[str, Any]:
        user = self.users.get(number)
        return {
            "Id": user.id if user else 0,
            "Number": number,
            "Name": user.display_name if user else number,
            "SkillGroup": "1",
            "Tags": [],
        }

    def queue_json(self, queue: Queue, expand_agents: bool) -> dict[str, Any]:
        row = queue.to_json()
        if expand_agents:
            row["Agents"] = [self.agent_json(a) for a in queue.agents]
        return row

    def history(
        self, start: dt.datetime, end: dt.datetime, zone: dt.tzinfo, queues: set[str], agents: set[str]
    ) -> list[dict[str, Any]]:
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
            while day.astimezone(dt.UTC) <= until:
                next_day = (day + dt.timedelta(days=1)).replace(hour=0)
                piece_in = max(s.logged_in, day.astimezone(dt.UTC))
                last_piece = next_day.astimezone(dt.UTC) > until
                piece_out = s.logged_out if last_piece else next_day.astimezone(dt.UTC)
                if piece_in < end and (piece_out or now) >= start:
                    rows.append(
                        {
                            "QueueNo": s.queue,
                            "AgentNo": s.agent,
                            "Agent": f"{s.agent} {user.display_name}" if user else s.agent,
                            "Day": iso(day, zone),
                            "loggedInDt": iso(piece_in, zone),
                            "LoggedOutDt": iso(piece_out, zone) if piece_out else None,
                            "LoggedInInterval": _interval((piece_out or now) - piece_in),
                            "LoggedInDayInterval": _interval((piece_out or now) - piece_in),
                            "LoggedInTotalInterval": _interval(until - s.logged_in),
                            "TalkingInterval": "PT0S",
                            "TalkingDayInterval": "PT0S",
                            "TalkingTotalInterval": "PT0S",
                        }
                    )
                day = next_day
        return rows

    def snapshot(self) -> dict[str, Any]:
        return {
            "users": [u.to_json() for u in self.users.values()],
            "queues": [self.queue_json(q, True) for q in self.queues.values()],
            "sessions": [
                {
                    "queue": s.queue,
                    "agent": s.agent,
                    "logged_in": s.logged_in.isoformat(),
                    "logged_out": s.logged_out.isoformat() if s.logged_out else None,
                }
                for s in self.sessions
            ],
        }


def _interval(delta: dt.timedelta) -> str:
    return duration(int(delta.total_seconds()))
