"""The directory as one poll saw it: extensions, queues with their agents and per-queue logins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ExtensionView:
    number: str
    name: str  # first and last name as the PBX holds them
    email: str
    profile: str  # CurrentProfileName: the forwarding profile in effect
    queue_login: bool  # QueueStatus == LoggedIn (global, all queues)


@dataclass(frozen=True, slots=True)
class QueueView:
    number: str
    name: str
    agents: tuple[str, ...]  # extension numbers in the PBX's order
    logged_in: frozenset[str]  # agents whose latest login-history session in this queue is open


@dataclass(frozen=True)
class DirectoryView:
    """A complete, successful poll. Views compare equal when the PBX state they hold is the same."""

    extensions: Mapping[str, ExtensionView]
    queues: Mapping[str, QueueView]
    queue_logins_known: bool = True  # False when the PBX refused the login-history report
    view_id: str = field(default="", compare=False)  # set when stored; seeds the event ids of its diff

    def queues_of(self, number: str) -> list[str]:
        return [q.number for q in self.queues.values() if number in q.agents]

    def to_json(self) -> dict[str, Any]:
        return {
            "extensions": [[e.number, e.name, e.email, e.profile, e.queue_login] for e in self.extensions.values()],
            "queues": [[q.number, q.name, list(q.agents), sorted(q.logged_in)] for q in self.queues.values()],
            "queue_logins_known": self.queue_logins_known,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], view_id: str) -> DirectoryView:
        extensions = {
            str(n): ExtensionView(str(n), str(name), str(email), str(profile), bool(login))
            for n, name, email, profile, login in data["extensions"]
        }
        queues = {
            str(n): QueueView(str(n), str(name), tuple(str(a) for a in agents), frozenset(str(a) for a in logged))
            for n, name, agents, logged in data["queues"]
        }
        return cls(extensions, queues, bool(data.get("queue_logins_known", True)), view_id)
