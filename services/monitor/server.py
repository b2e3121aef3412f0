"""Wiring of the monitor: store, PBX client, call graph, Call Control, publisher, status poller, post-call
reconciliation, outage recovery, gRPC servicer.

Only the holder of the store lease `monitor:<pbx url>` talks to the PBX (3CX keeps one live token
per API client, and two monitors would double every webhook); a standby waits for the lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

import grpc

from tcxhooks.platform.lease import Lease
from tcxhooks.platform.retry import PERMANENT, Refused, rpc_error
from tcxhooks.platform.runtime import App
from tcxhooks.platform.waiting import sleep_or_stop
from tcxhooks.v1 import dispatcher_service_pb2, dispatcher_service_pb2_grpc, events_pb2, monitor_service_pb2_grpc

from .callgraph import CallGraph, Settings
from .capture.recorder import Recorder
from .capture.session import Capture
from .config import MonitorSettings
from .engine import Engine
from .enrich import Enricher
from .errors import PbxError
from .facts import Facts
from .pbx import xapi
from .pbx.callcontrol import CallControl
from .pbx.client import PbxClient
from .peers import peer_names
from .publisher import Publisher
from .reconcile import Reconciler
from .recover import Recoverer
from .registry import Registry
from .servicer import MonitorServicer
from .status.poller import StatusPoller

log = logging.getLogger(__name__)
FACTS_REFRESH = 300.0


def graph_settings(settings: MonitorSettings) -> Settings:
    return Settings(
        grace=settings.pbx.ringing_grace,
        ringing_stopped=settings.events.ringing_stopped,
        internal_calls=settings.events.internal_calls,
        timezone=settings.pbx.timezone,
    )


async def refresh_facts(pbx: PbxClient, facts: Facts) -> None:
    """Trunk DIDs, inbound rule names and the DNs' names (XAPI); a failure keeps what was known."""
    try:
        facts.trunk_dids = await xapi.trunk_dids(pbx)
    except PbxError as exc:
        log.warning("trunk DIDs unavailable (DIDs come from the inbound-call report instead): %s", exc)
    try:
        facts.rules = await xapi.inbound_rules(pbx)
    except PbxError as exc:
        log.warning("inbound rules unavailable (no DID rule names): %s", exc)
    try:
        facts.names = await peer_names(pbx)
    except PbxError as exc:
        log.warning("XAPI Peers unavailable (events name no user, queue or group): %s", exc)


async def build(app: App[MonitorSettings]) -> None:
    config = app.settings
    store = await app.open_store()
    registry = Registry(store, config.pbx.url)
    await registry.migrate()
    pbx = PbxClient(config.pbx)
    app.stack.push_async_callback(pbx.aclose)
    facts = Facts()
    graph = CallGraph(graph_settings(config), facts)
    lease = Lease(
        store,
        f"monitor:{config.pbx.url}",
        owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4()}",
        ttl=config.pbx.lease_ttl,
    )

    def fence() -> dispatcher_service_pb2.Fence:
        """Sent with every publish: the dispatcher refuses a monitor whose lease a newer holder took."""
        return dispatcher_service_pb2.Fence(lease=lease.name, number=lease.fence)

    dispatcher = app.channel("dispatcher")
    media = app.channel("media") if config.recordings.enabled else None
    enricher = Enricher(pbx, facts, config.events.language, graph.progress.exits)
    publisher = Publisher(registry, dispatcher, media, enricher, fence)
    stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(dispatcher)

    async def publish(event: events_pb2.Event) -> None:
        try:
            await stub.Publish(dispatcher_service_pb2.PublishRequest(event=event, fence=fence()), timeout=15)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in PERMANENT:
                raise Refused(f"dispatcher Publish refused: {rpc_error(exc)}") from None
            raise

    poller = StatusPoller(pbx, store, publish, config.pbx)
    reconciler = Reconciler(pbx, facts, config.pbx.reconcile_delay) if config.pbx.reconcile else None
    engine = Engine(graph, registry, publisher, pbx, poke=poller.poke, reconciler=reconciler)
    recoverer = (
        Recoverer(pbx, graph, registry, engine, config.pbx.reconcile_delay) if config.pbx.recover_outages else None
    )
    callcontrol = CallControl(
        pbx,
        engine,
        on_link=recoverer.link if recoverer is not None else None,
        on_gap=recoverer.gap if recoverer is not None else None,
    )
    recorder = Recorder()
    pbx.recorder = callcontrol.recorder = recorder
    capture = Capture(recorder, engine, callcontrol, config.events.language)
    servicer = MonitorServicer(
        graph,
        pbx,
        callcontrol,
        poller.extensions,
        poller.queues,
        reads_call_log=config.pbx.reads_call_log,
        reconciler=reconciler,
        capture=capture,
    )
    monitor_service_pb2_grpc.add_MonitorServiceServicer_to_server(servicer, app.server)

    async def pbx_connected() -> None:
        """The Call Control socket is open and resynced (waiting a moment for it, e.g. right after start)."""
        try:
            await asyncio.wait_for(callcontrol.up.wait(), 2.0)
        except TimeoutError:
            raise PbxError("Call Control WebSocket not connected") from None

    app.health.add_check("pbx", pbx_connected, critical=True)

    async def facts_loop(stopping: asyncio.Event) -> None:
        while not await sleep_or_stop(FACTS_REFRESH, stopping):
            await refresh_facts(pbx, facts)

    async def active() -> None:
        if not await lease.acquire(app.stopping):
            return
        await engine.restore()
        capture.active = True
        if recoverer is not None:
            await recoverer.restore()
        await refresh_facts(pbx, facts)
        loops = [
            lease.keep(app.stopping),
            engine.run(app.stopping),
            publisher.run(app.stopping),
            callcontrol.run(app.stopping),
            poller.run(app.stopping),
            facts_loop(app.stopping),
        ]
        if reconciler is not None:
            loops.append(reconciler.run(app.stopping))
        if recoverer is not None:
            loops.append(recoverer.run(app.stopping))
        await asyncio.gather(*loops)

    app.spawn(active(), "active")
