"""Polls the XAPI directory every `[pbx] poll_interval`, diffs complete views, publishes status events.

    poller = StatusPoller(pbx_client, store, publish, settings.pbx)
    app.spawn(poller.run(app.stopping), "status-poller")
    poller.poke()          # e.g. Call Control showed a DN change: poll now

Rules (docs/webhooks.md §4): no baseline yet → the first complete view is stored silently; a stored
baseline → the differences are sent once; a failed or partial read of Users or Queues → nothing is
diffed (it never turns into deletions). Per-queue logins come from the login-history report; when
that report fails, or has no row for an agent of a queue, the last known state is kept (and diffed
once the report shows it again).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.platform.retry import Refused
from tcxhooks.platform.store import Store
from tcxhooks.platform.waiting import sleep_or_stop
from tcxhooks.v1 import events_pb2, monitor_service_pb2

from ..config import PbxConfig
from ..errors import NotReady
from . import metrics
from .diff import NAMES, diff
from .store import StatusStore, StatusStoreError
from .view import DirectoryView, ExtensionView, QueueView
from .xapi import LOGGED_IN, JsonGetter, Xapi, XapiError, current_logins

log = logging.getLogger("tcxhooks.monitor.status")

Publish = Callable[[events_pb2.Event], Awaitable[None]]
HISTORY_LOOKBACK = dt.timedelta(days=2)  # login sessions are reported per day: today's piece of an open one suffices


class StatusPoller:
    def __init__(
        self,
        pbx: JsonGetter,
        store: Store,
        publish: Publish,
        pbx_settings: PbxConfig,
        *,
        page_size: int = 500,
        timeout: float = 10.0,
    ) -> None:
        self._xapi = Xapi(pbx, page_size=page_size, timeout=timeout)
        self._store = StatusStore(store, pbx_settings.url)
        self._publish = publish
        self._interval = pbx_settings.poll_interval
        self._poke = asyncio.Event()
        self._view: DirectoryView | None = None
        self._failing: dict[str, str] = {}  # what → last error, to log each failure streak once
        self._ready = False

    # --- public ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Creates the tables and loads the persisted baseline (run() does it too)."""
        if not self._ready:
            await self._store.migrate()
            try:
                self._view = await self._store.load()
            except StatusStoreError as exc:  # never crash on it: a new silent baseline replaces it
                log.error("%s; taking a new baseline (changes made while down are not reported)", exc)
                metrics.POLL_FAILURES.labels("store").inc()
            self._ready = True

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self._poke.clear()
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store broke: keep the loop, try again next round
                self._failed("store", f"status poll failed: {type(exc).__name__}: {exc}")
            else:
                self._recovered("store")
            await sleep_or_stop(self._interval, stopping, self._poke)

    def poke(self) -> None:
        """Poll now (or right after the poll in progress)."""
        self._poke.set()

    def extensions(self) -> list[monitor_service_pb2.Extension]:
        view = self._view
        if view is None:
            return []
        queues: dict[str, list[str]] = {}
        for queue in view.queues.values():
            for agent in queue.agents:
                queues.setdefault(agent, []).append(queue.number)
        return [
            monitor_service_pb2.Extension(
                number=e.number,
                name=e.name,
                email=e.email,
                profile=e.profile,
                queue_logged_in=e.queue_login,
                queues=queues.get(e.number, []),
            )
            for e in sorted(view.extensions.values(), key=lambda e: (len(e.number), e.number))
        ]

    def queues(self) -> list[monitor_service_pb2.Queue]:
        """The queues as last polled; NotReady before the first poll (an empty list would mean no queues)."""
        view = self._view
        if view is None:
            raise NotReady("the directory has not been read yet")
        return [
            monitor_service_pb2.Queue(number=q.number, name=q.name, agents=q.agents)
            for q in sorted(view.queues.values(), key=lambda q: (len(q.number), q.number))
        ]

    # --- one round -------------------------------------------------------------------------
    async def poll(self) -> list[events_pb2.Event]:
        """Flushes pending events, reads the PBX, diffs and publishes; returns what it published."""
        await self.start()
        published = await self._flush()
        started = time.perf_counter()
        try:
            current = await self.read()
        except XapiError as exc:
            self._failed(exc.what, str(exc))
            return published
        for what in [w for w in self._failing if w not in ("publish", "ReportAgentLoginHistory")]:
            self._recovered(what)
        previous = self._view
        if previous is None:
            self._view = await self._store.save(current)
            log.info(
                "status baseline taken: %d extensions, %d queues (no events on a first start)",
                len(current.extensions),
                len(current.queues),
            )
        else:
            changes = diff(previous, current)
            if changes or current != previous:
                occur = Timestamp()
                occur.GetCurrentTime()
                events = [
                    events_pb2.Event(
                        event_id=f"status-{previous.view_id}-{i}",
                        chain=f"ext:{c.user}",
                        occur_time=occur,
                        status=c.to_proto(),
                    )
                    for i, c in enumerate(changes)
                ]
                self._view = await self._store.save(current, events)
                for change in changes:
                    metrics.CHANGES.labels(NAMES[change.type]).inc()
                published += await self._flush()
        metrics.POLL_SECONDS.observe(time.perf_counter() - started)
        metrics.EXTENSIONS.set(len(current.extensions))
        metrics.LAST_SUCCESS.set(time.time())
        return published

    async def read(self) -> DirectoryView:
        """One complete view of the PBX, or XapiError."""
        now = dt.datetime.now(dt.UTC)
        history = asyncio.ensure_future(self._xapi.login_history(now - HISTORY_LOOKBACK, now + dt.timedelta(days=1)))
        reads = (asyncio.ensure_future(self._xapi.users()), asyncio.ensure_future(self._xapi.queues()))
        try:
            users, queues = await asyncio.gather(*reads)
        except BaseException:
            history.cancel()
            await asyncio.gather(history, return_exceptions=True)
            raise
        finally:  # one read failed: stop the others too, no request of this poll outlives it
            for read in reads:
                read.cancel()
            await asyncio.gather(*reads, return_exceptions=True)
        previous = self._view
        try:
            logins = current_logins(await history)
            known = True
            self._recovered("ReportAgentLoginHistory")
        except XapiError as exc:
            self._failed(exc.what, f"{exc}; per-queue logins kept as last seen")
            logins = None
            known = previous.queue_logins_known if previous is not None else False
        extensions = {
            u.number: ExtensionView(u.number, u.name, u.email, u.profile, u.queue_status == LOGGED_IN) for u in users
        }
        views = {}
        for q in queues:
            last = previous.queues.get(q.number) if previous is not None else None
            logged_in = set()
            for agent in q.agents:
                # no row for the pair (or no report): the last known state; out for a new member
                state = logins.get((q.number, agent)) if logins is not None else None
                if state is None:
                    state = last is not None and agent in last.logged_in
                if state:
                    logged_in.add(agent)
            views[q.number] = QueueView(q.number, q.name, q.agents, frozenset(logged_in))
        return DirectoryView(extensions, views, known)

    async def _flush(self) -> list[events_pb2.Event]:
        """Hands pending events to the dispatcher in order; stops at the first failure (kept for next time).
        An event the dispatcher refuses as invalid is logged, counted and dropped."""
        sent: list[events_pb2.Event] = []
        through = 0
        for seq, event in await self._store.pending():
            try:
                await self._publish(event)
            except asyncio.CancelledError:
                raise
            except Refused as exc:  # sending it again cannot help: the events after it go on
                log.error("%s; status event %s dropped", exc, event.event_id)
                metrics.POLL_FAILURES.labels("refused").inc()
                through = seq
                continue
            except Exception as exc:
                self._failed("publish", f"publishing status events failed: {type(exc).__name__}: {exc}")
                break
            sent.append(event)
            through = seq
        else:
            self._recovered("publish")
        if through:
            await self._store.done(through)
        return sent

    def _failed(self, what: str, message: str) -> None:
        metrics.POLL_FAILURES.labels(what).inc()
        if what not in self._failing:
            log.warning("%s (status events wait until it answers; logged once)", message)
        self._failing[what] = message

    def _recovered(self, what: str) -> None:
        if self._failing.pop(what, None) is not None:
            log.info("%s answers again", what)
