"""Pure diff of two complete directory views into ordered status changes (docs/webhooks.md §4).

Changes come grouped per extension (extensions in numeric order) and, within one extension, in the
order a CRM can apply them: added, forwarding, queue login, per queue (added, login, removed), deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from tcxhooks.v1 import events_pb2

from .view import DirectoryView, QueueView

T = events_pb2.StatusEventType
FORWARDING = T.STATUS_EVENT_TYPE_FORWARDING
QUEUE_LOGIN = T.STATUS_EVENT_TYPE_QUEUE_LOGIN
QUEUE_STATUS = T.STATUS_EVENT_TYPE_QUEUE_STATUS
EXTENSION_ADDED = T.STATUS_EVENT_TYPE_EXTENSION_ADDED
EXTENSION_DELETED = T.STATUS_EVENT_TYPE_EXTENSION_DELETED
AGENT_ADDED = T.STATUS_EVENT_TYPE_AGENT_ADDED
AGENT_REMOVED = T.STATUS_EVENT_TYPE_AGENT_REMOVED

NAMES = {
    FORWARDING: "forwarding",
    QUEUE_LOGIN: "queuelogin",
    QUEUE_STATUS: "queuestatus",
    EXTENSION_ADDED: "extensionadded",
    EXTENSION_DELETED: "extensiondeleted",
    AGENT_ADDED: "agentadded",
    AGENT_REMOVED: "agentremoved",
}


@dataclass(frozen=True, slots=True)
class Change:
    type: events_pb2.StatusEventType
    user: str
    name: str = ""
    email: str = ""
    status: str = ""
    previous: str = ""
    queue: str = ""
    queue_name: str = ""

    def to_proto(self) -> events_pb2.StatusEvent:
        return events_pb2.StatusEvent(
            type=self.type,
            user=self.user,
            name=self.name,
            email=self.email,
            status=self.status,
            previous=self.previous,
            queue=self.queue,
            queue_name=self.queue_name,
        )


def _in_out(flag: bool) -> str:
    return "in" if flag else "out"


def _numeric(number: str) -> tuple[int, str]:
    return (len(number), number)


def diff(previous: DirectoryView, current: DirectoryView) -> list[Change]:
    return _Differ(previous, current).run()


class _Differ:
    # stages order one extension's changes; queue changes (3-5) sort per queue between them
    ADDED, PROFILE, LOGIN, QUEUE, DELETED = 0, 1, 2, 3, 9

    def __init__(self, previous: DirectoryView, current: DirectoryView) -> None:
        self.previous, self.current = previous, current
        self.per_user: dict[str, list[tuple[int, tuple[int, str], int, Change]]] = {}

    def add(self, stage: int, change: Change, step: int = 0) -> None:
        self.per_user.setdefault(change.user, []).append((stage, _numeric(change.queue), step, change))

    def name(self, number: str) -> str:
        ext = self.current.extensions.get(number) or self.previous.extensions.get(number)
        return ext.name if ext is not None else ""

    def run(self) -> list[Change]:
        before, after = self.previous.extensions, self.current.extensions
        for number, now in after.items():
            was = before.get(number)
            if was is None:
                self.add(self.ADDED, Change(EXTENSION_ADDED, number, now.name, now.email))
                continue
            if now.profile != was.profile:
                self.add(self.PROFILE, Change(FORWARDING, number, now.name, status=now.profile, previous=was.profile))
            if now.queue_login != was.queue_login:
                self.add(
                    self.LOGIN,
                    Change(
                        QUEUE_LOGIN,
                        number,
                        now.name,
                        status=_in_out(now.queue_login),
                        previous=_in_out(was.queue_login),
                    ),
                )
        for number, was in before.items():
            if number not in after:
                self.add(self.DELETED, Change(EXTENSION_DELETED, number, was.name))
        empty = QueueView("", "", (), frozenset())
        for number in self.current.queues.keys() | self.previous.queues.keys():
            self.queue(self.previous.queues.get(number, empty), self.current.queues.get(number, empty), number)
        changes: list[Change] = []
        for user in sorted(self.per_user, key=_numeric):
            changes.extend(item[3] for item in sorted(self.per_user[user], key=lambda item: item[:3]))
        return changes

    def queue(self, was: QueueView, now: QueueView, number: str) -> None:
        logins = self.previous.queue_logins_known and self.current.queue_logins_known
        queue_name = now.name or was.name
        was_agents, now_agents = set(was.agents), set(now.agents)
        for agent in now.agents:
            logged_in = agent in now.logged_in
            if agent not in was_agents:
                self.add(self.QUEUE, Change(AGENT_ADDED, agent, self.name(agent), queue=number, queue_name=queue_name))
            # a view's logged_in holds only its agents: an agent added logged in logs in ("in" after "out")
            if logins and logged_in != (agent in was.logged_in):
                self.add(
                    self.QUEUE,
                    Change(
                        QUEUE_STATUS,
                        agent,
                        self.name(agent),
                        status=_in_out(logged_in),
                        previous=_in_out(not logged_in),
                        queue=number,
                        queue_name=queue_name,
                    ),
                    1,
                )
        for agent in was.agents:
            if agent not in now_agents:
                self.add(
                    self.QUEUE, Change(AGENT_REMOVED, agent, self.name(agent), queue=number, queue_name=queue_name), 2
                )
