"""Call Control WebSocket client (docs/3cx.md §3): events in order, entities fetched, resync after every connect.

    cc = CallControl(pbx, sink)
    app.spawn(cc.run(app.stopping), "callcontrol")

For every (re)connect: open the socket first, then `GET /callcontrol` and hand the snapshot to the
sink (so nothing that happens in between is missed). Each participant Upsert is fetched with a GET
(404 → Remove; a participant object in `attached_data` is used as is); Removes carry no data (the
sink holds the last copy). GETs run concurrently but one at a time per entity, and results reach the
sink strictly in message order. Bad frames are counted and logged, never fatal; a sequence gap
triggers a resync. Reconnects back off exponentially (capped) forever. While it runs, the PBX client
mints each next token ahead of expiry (the socket stays open across re-mints).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from tcxhooks.platform.waiting import sleep_or_stop

from ..capture.recorder import Recorder
from ..errors import PbxError, PbxHttpError
from ..metrics import MALFORMED, RESYNC_SECONDS, WS_CONNECTED, WS_RECONNECTS
from ..participant import Participant, encodable
from .client import PbxClient

log = logging.getLogger(__name__)

UPSERT, REMOVE, DTMF, PROMPT_DONE, RESPONSE = 0, 1, 2, 3, 4
_PARTICIPANT = re.compile(r"^/callcontrol/([^/]+)/participants/(\d+)$")
_DEVICE_OR_DN = re.compile(r"^/callcontrol/([^/]+)(?:/devices(?:/.*)?)?$")
MAX_IN_FLIGHT = 64
FAILED: Any = object()  # an entity that could not be read (neither a state nor a 404)
Step = Callable[[], Awaitable[None]]
Fetched = tuple[Participant | None, Any]  # the participant (None: gone or unreadable) and the JSON it came from


class Sink(Protocol):
    """Where Call Control changes go, in order (the monitor's engine)."""

    async def snapshot(self, dns: list[dict[str, Any]], participants: list[Participant]) -> None: ...
    async def upsert(self, participant: Participant) -> None: ...
    async def remove(self, dn: str, pid: int) -> None: ...
    async def dn_changed(self, dn: str) -> None: ...


def _bad(reason: str, detail: str) -> None:
    MALFORMED.labels(reason).inc()
    log.warning("Call Control message ignored (%s): %s", reason, detail[:300])


def parse_snapshot(body: Any) -> tuple[list[dict[str, Any]], list[Participant]]:
    """DNInfo list of `GET /callcontrol` → (DNs, participants); malformed entries are counted and skipped."""
    if not isinstance(body, list):
        raise PbxError("GET /callcontrol: the answer is not a list of DNs")
    dns: list[dict[str, Any]] = []
    parts: list[Participant] = []
    for info in body:
        if not isinstance(info, dict) or not isinstance(info.get("dn"), str):
            _bad("bad_snapshot", repr(info))
            continue
        dns.append({"dn": encodable(info["dn"]), "type": encodable(str(info.get("type") or ""))})
        for raw in info.get("participants") or []:
            try:
                parts.append(Participant.parse(raw, info["dn"]))
            except ValueError as exc:
                _bad("bad_participant", f"{exc}: {raw!r}")
    return dns, parts


class CallControl:
    def __init__(
        self,
        pbx: PbxClient,
        sink: Sink,
        ping_interval: float = 10.0,
        max_backoff: float = 30.0,
        resync_every: float = 60.0,
        on_link: Callable[[bool], None] | None = None,
        on_gap: Callable[[float], None] | None = None,
    ) -> None:
        self.pbx = pbx
        self.sink = sink
        self.on_link = on_link  # told True once a session is resynced, False when such a session is lost
        self.on_gap = on_gap  # told, at a sequence gap, the unix time of the last frame before it
        self.ping_interval = ping_interval
        self.max_backoff = max_backoff
        self.resync_every = resync_every
        self.connected = False
        self.last_message = 0.0  # monotonic
        self.last_resync = 0.0  # monotonic
        self.connects = 0
        self._gone: set[str] = set()  # entities already reported removed by a 404
        self._synced = False
        self.up = asyncio.Event()  # set while connected and resynced
        self._token: str | None = None  # the token of the last upgrade (renewed after a 401)
        self._ordered: asyncio.Queue[Step | None] | None = None  # the open session's changes, in message order
        self.recorder: Recorder | None = None  # a capture listening (capture/recorder.py)

    async def run(self, stopping: asyncio.Event) -> None:
        keeper = asyncio.create_task(self.pbx.keep_token_fresh(stopping), name="monitor.token")
        try:
            await self._run(stopping)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _run(self, stopping: asyncio.Event) -> None:
        backoff = 0.5
        fresh_token = False  # the last attempt was refused with 401 and got a new token at once
        while not stopping.is_set():
            self._synced = False
            renewed = False
            try:
                await self._session(stopping)
            except InvalidStatus as exc:
                status = exc.response.status_code
                WS_RECONNECTS.labels("refused").inc()
                self._record("close", reason=f"refused with HTTP {status}")
                log.warning("Call Control WebSocket refused with HTTP %s", status)
                if status == 401:
                    renewed = await self._renew(self._token)
            except (TimeoutError, OSError, WebSocketException) as exc:
                WS_RECONNECTS.labels("dropped").inc()
                self._record("close", reason=str(exc) or type(exc).__name__)
                log.warning("Call Control WebSocket lost: %s", exc or type(exc).__name__)
            except PbxError as exc:
                WS_RECONNECTS.labels("pbx_error").inc()
                self._record("close", reason=str(exc))
                log.warning("Call Control unavailable: %s", exc)
            finally:
                if self.up.is_set() and self.on_link is not None:
                    self.on_link(False)
                self.connected = False
                self.up.clear()
                WS_CONNECTED.set(0)
            if stopping.is_set():
                break
            if self._synced:
                backoff = 0.5  # the last session got as far as a resync: the PBX is fine, come back quickly
            if renewed and not fresh_token:
                # the token expired while we were away: every second waited now is a second of calls
                # not seen, so go back at once with the new one (once: a refused new token backs off)
                fresh_token = True
                continue
            fresh_token = False
            delay = backoff * (0.8 + 0.4 * random.random())
            backoff = min(self.max_backoff, backoff * 2)
            await sleep_or_stop(delay, stopping)

    async def _renew(self, stale: str | None) -> bool:
        try:
            await self.pbx.renew(stale)
        except PbxError as exc:
            log.warning("cannot renew the PBX token: %s", exc)
            return False
        return True

    async def _session(self, stopping: asyncio.Event) -> None:
        token = self._token = await self.pbx.token()
        url = self.pbx.websocket_url("/callcontrol/ws")
        async with websockets.connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}"},
            ssl=self.pbx.ssl_context(),
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_interval,
            max_size=16 * 1024 * 1024,
            open_timeout=15,
            compression=None,
        ) as ws:
            self.connects += 1
            WS_RECONNECTS.labels("connected").inc()
            log.info("Call Control WebSocket open (%s)", url)
            self._record("open")
            ordered: asyncio.Queue[Step | None] = asyncio.Queue(MAX_IN_FLIGHT)
            applier = asyncio.create_task(self._apply(ordered, ws))
            try:
                # The socket is open before the snapshot is read, so no change falls in between.
                await self._resync()
                self._synced = True
                self.connected = True
                self.up.set()
                WS_CONNECTED.set(1)
                if self.on_link is not None:
                    self.on_link(True)
                self._ordered = ordered
                await self._read(ws, ordered, stopping)
            finally:
                self._ordered = None
                await ordered.put(None)
                await asyncio.wait({applier}, timeout=5)
                applier.cancel()
                await asyncio.gather(applier, return_exceptions=True)

    def resync_soon(self, reason: str) -> bool:
        """Queues a resync behind the changes already received (a capture starts); False when not connected."""
        if self._ordered is None:
            return False
        try:
            self._ordered.put_nowait(lambda: self._resync(reason))
        except asyncio.QueueFull:
            return False
        return True

    def _record(self, kind: str, **fields: Any) -> None:
        if self.recorder is not None:
            self.recorder.record(kind, **fields)

    async def _resync(self, reason: str = "connect") -> None:
        started = time.perf_counter()
        try:
            body = await self.pbx.get_json("/callcontrol")
        except PbxError as exc:
            self._record("snapshot", reason=reason, error=str(exc))
            raise
        dns, parts = parse_snapshot(body)
        self._record("snapshot", reason=reason, body=body)
        await self.sink.snapshot(dns, parts)
        self._gone.clear()
        self.last_resync = time.monotonic()
        RESYNC_SECONDS.observe(time.perf_counter() - started)
        log.info("Call Control resync: %d DNs, %d participants", len(dns), len(parts))

    async def _apply(self, ordered: asyncio.Queue[Step | None], ws: Any) -> None:
        """Applies fetched changes in message order; a failure closes the socket (reconnect + resync)."""
        while True:
            step = await ordered.get()
            if step is None:
                return
            try:
                await step()
            except Exception as exc:  # a failed resync or sink error: start over from a fresh snapshot
                log.warning("Call Control processing failed, reconnecting: %s", exc)
                await ws.close()
                return

    async def _read(self, ws: Any, ordered: asyncio.Queue[Step | None], stopping: asyncio.Event) -> None:
        last_sequence: int | None = None
        last_frame_at = time.time()  # unix time of the last frame (of the resync, before the first)
        fetches: dict[str, asyncio.Task[Fetched]] = {}

        async def close_when_stopping() -> None:
            await stopping.wait()
            await ws.close()

        closer = asyncio.create_task(close_when_stopping())
        try:
            while True:
                timeout = max(1.0, self.resync_every - (time.monotonic() - self.last_resync))
                try:
                    async with asyncio.timeout(timeout):
                        frame = await ws.recv()
                except TimeoutError:
                    await ordered.put(lambda: self._resync("watchdog"))  # catches anything lost silently
                    continue
                except ConnectionClosed:
                    if stopping.is_set():
                        return
                    raise
                self.last_message = time.monotonic()
                previous_frame_at, last_frame_at = last_frame_at, time.time()
                if isinstance(frame, bytes):
                    _bad("binary_frame", f"{len(frame)} bytes")
                    self._record("frame", binary=len(frame))
                    continue
                self._record("frame", text=frame)
                try:
                    message = json.loads(frame)
                    sequence = message.get("sequence")
                    event = message["event"]
                    event_type = event["event_type"]
                    entity = event["entity"]
                    if not isinstance(entity, str) or not isinstance(event_type, int):
                        raise TypeError
                except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                    _bad("malformed_json", str(frame))
                    continue
                if isinstance(sequence, int):
                    if last_sequence is not None and sequence <= last_sequence:
                        _bad("out_of_order", f"sequence {sequence} after {last_sequence}")
                    elif last_sequence is not None and sequence > last_sequence + 1:
                        _bad("sequence_gap", f"sequence {sequence} after {last_sequence}; resync")
                        await ordered.put(lambda: self._resync("gap"))
                        if self.on_gap is not None:  # a call may have come and gone in the frames lost
                            self.on_gap(previous_frame_at)
                    last_sequence = max(sequence, last_sequence or sequence)
                await self._dispatch(event_type, entity, event.get("attached_data"), ordered, fetches)
        finally:
            closer.cancel()

    async def _dispatch(
        self,
        event_type: int,
        entity: str,
        attached: Any,
        ordered: asyncio.Queue[Step | None],
        fetches: dict[str, asyncio.Task[Fetched]],
    ) -> None:
        match = _PARTICIPANT.match(entity)
        if match is None:
            other = _DEVICE_OR_DN.match(entity)
            if other is not None and event_type in (UPSERT, REMOVE):
                dn = other.group(1)
                await ordered.put(lambda: self.sink.dn_changed(dn))
            elif event_type not in (DTMF, PROMPT_DONE, RESPONSE):
                _bad("unknown_entity", f"{event_type} {entity}")
            return
        dn, pid = match.group(1), int(match.group(2))
        if event_type == REMOVE:

            async def removed() -> None:
                if entity in self._gone:
                    self._gone.discard(entity)
                    return
                self._record("remove", entity=entity, reason="removed")
                await self.sink.remove(dn, pid)

            await ordered.put(removed)
        elif event_type == UPSERT:
            previous = fetches.get(entity)
            task = asyncio.create_task(self._fetch(entity, dn, attached, previous))
            fetches[entity] = task

            def forget(done: asyncio.Task[Fetched], key: str = entity) -> None:
                if fetches.get(key) is done:
                    del fetches[key]

            task.add_done_callback(forget)

            async def upserted() -> None:
                part, raw = await task
                if part is FAILED:
                    await self._resync("unreadable")  # the entity could not be read: a snapshot settles it
                elif part is None:
                    self._gone.add(entity)
                    self._record("remove", entity=entity, reason="gone" if raw is None else "malformed", body=raw)
                    await self.sink.remove(dn, pid)
                else:
                    self._gone.discard(entity)
                    self._record("upsert", entity=entity, body=raw)
                    await self.sink.upsert(part)

            await ordered.put(upserted)
        elif event_type not in (DTMF, PROMPT_DONE, RESPONSE):
            _bad("unknown_event_type", f"{event_type} {entity}")

    async def _fetch(self, entity: str, dn: str, attached: Any, previous: asyncio.Task[Fetched] | None) -> Fetched:
        """The participant now (None when it is gone) and its JSON (None after a 404); one GET at a time per
        entity."""
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        if isinstance(attached, dict) and "status" in attached and "callid" in attached:
            try:
                return Participant.parse(attached, dn), attached
            except ValueError as exc:
                _bad("bad_participant", f"{exc}: attached_data of {entity}")
        for attempt in range(3):
            raw = None
            try:
                raw = await self.pbx.get_json(entity)
                return Participant.parse(raw, dn), raw
            except PbxHttpError as exc:
                if exc.status == 404:
                    return None, None
                log.warning("GET %s failed: %s", entity, exc)
            except ValueError as exc:
                _bad("bad_participant", f"{exc}: {entity}")
                return None, raw
            except PbxError as exc:
                log.warning("GET %s failed: %s", entity, exc)
            await asyncio.sleep(0.2 * (attempt + 1))
        _bad("fetch_failed", entity)
        return FAILED, None
