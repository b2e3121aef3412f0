"""`tcxhooks check -c FILE`: validate the file, then reach every dependency; one verdict line each.

    config   ok    /etc/tcxhooks/tcxhooks.ini: 2 endpoints, store sqlite
    pbx      FAIL  token: 401 unauthorized
                   fix: check [pbx] client_id / client_secret (Integrations → API in the 3CX console)

Where a service is running it is asked over gRPC (a running monitor holds the PBX's only live
token, so check must not mint a second one; a running dispatcher sends the pings). Otherwise check
reaches the dependency itself. Exit 0 only when every item passes.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .platform.config import ConfigError, redacted_url
from .platform.configfile import add_config_option, find_config
from .platform.grpc import describe_token, open_channel, open_without_token
from .platform.logging import RedactingFilter
from .platform.store import open_store
from .product import Product, load_product

DIRECTORY_WAIT = 15  # seconds to wait for a running monitor's first directory poll


@dataclass
class Verdict:
    item: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # works, but with a risk the operator should remove (does not fail check)

    def lines(self) -> list[str]:
        status = "FAIL" if not self.ok else "warn" if self.warning else "ok  "
        out = [f"{self.item:<18} {status}  {self.detail}"]
        if (not self.ok or self.warning) and self.fix:
            out.append(f"{'':24}fix: {self.fix}")
        return out


async def _running(config: Product, service: str) -> grpc.aio.Channel | None:
    """A channel to the service when it answers health checks (running), else None."""
    channel = open_channel(config.platform.services, service)
    try:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return channel
    except grpc.aio.AioRpcError:
        await channel.close()
        return None


async def check_store(config: Product) -> list[Verdict]:
    url = config.platform.store.url
    try:
        store = await open_store(url)
        try:
            await store.ping()
        finally:
            await store.close()
    except Exception as exc:  # any failure to reach the store is the verdict
        return [Verdict("store", False, str(exc),
                        "check [store] url; SQLite needs a writable folder, Postgres a reachable server and database")]
    return [Verdict("store", True, f"{url.split('://')[0]} store answers")]


def _monitor_verdict(config: Product, item: Any, fix: str) -> Verdict:
    """One item the running monitor reported; the post-call check's disagreements are a warning whose fix is
    the capture command (docs/3cx.md §4.7, §8)."""
    detail = item.detail + " (asked the running monitor)"
    disagreed = item.counts.get("disagree", 0)
    if item.name != "reconcile" or not item.ok or not disagreed:
        return Verdict(f"pbx {item.name}", item.ok, detail, fix)
    where = f"-c {config.path} " if os.path.isfile(config.path) else ""
    return Verdict(f"pbx {item.name}", True, detail, warning=True, fix=(
        f"the PBX saw {disagreed} call(s) otherwise than the webhooks said: record what the monitor receives and "
        f"send it to the developers (docs/3cx.md §8): tcxhooks capture {where}-o trace.jsonl --minutes 30 "
        f"--anonymize"))


async def check_pbx(config: Product) -> list[Verdict]:
    from tcxhooks.v1 import monitor_service_pb2, monitor_service_pb2_grpc

    fixes = {
        "token": "check [pbx] url, client_id and client_secret (3CX console: Integrations → API)",
        "callcontrol": "enable '3CX Call Control API Access' for the client and add every DN to monitor",
        "xapi": "enable '3CX Configuration API Access' with the System Owner role (needed for recordings)",
        "recordings": "give the API client the System Owner role (XAPI Recordings answers 403 otherwise)",
        "websocket": "see the monitor's log; it reconnects with backoff",
        "calllog": "give the API client the System Owner role (the call log answers 403 otherwise), or set "
                   "[pbx] reconcile = false and recover_outages = false",
        "reconcile": "give the API client the System Owner role, or set [pbx] reconcile = false",
    }
    channel = await _running(config, "monitor")
    if channel is not None:
        try:
            reply = await monitor_service_pb2_grpc.MonitorServiceStub(channel).CheckPbx(
                monitor_service_pb2.CheckPbxRequest(), timeout=30)
        finally:
            await channel.close()
        return [_monitor_verdict(config, item, fixes.get(item.name, "")) for item in reply.items]
    settings = config.monitor.pbx
    if not settings.url:
        return [Verdict("pbx", False, "[pbx] url is not set", "set [pbx] url to the 3CX V20 base URL")]
    from tcxhooks.monitor.pbx import xapi
    from tcxhooks.monitor.pbx.client import PbxClient

    pbx = PbxClient(settings)
    verdicts: list[Verdict] = []

    async def probe(name: str, action: Callable[[], Awaitable[str]]) -> None:
        try:
            verdicts.append(Verdict(f"pbx {name}", True, await action()))
        except Exception as exc:  # the message names what failed
            verdicts.append(Verdict(f"pbx {name}", False, str(exc), fixes[name]))

    async def token() -> str:
        await pbx.token()
        return f"token minted for client {settings.client_id}"

    async def callcontrol() -> str:
        dns = await pbx.get_json("/callcontrol")
        names = ", ".join(sorted(str(d.get("dn")) for d in dns if isinstance(d, dict)))[:200]
        return f"{len(dns)} DNs visible: {names}"

    async def recordings() -> str:
        await pbx.get_json("/xapi/v1/Recordings", {"$top": "1"})
        return "XAPI Recordings readable"

    try:
        await probe("token", token)
        if verdicts[-1].ok:
            await probe("callcontrol", callcontrol)
            await probe("recordings", recordings)
            if settings.reads_call_log:
                await probe("calllog", lambda: xapi.call_log_readable(pbx))
    finally:
        await pbx.aclose()
    return verdicts


async def _directory(config: Product) -> tuple[set[str], set[str], str]:
    """(extension numbers, queue numbers, where they came from) of the PBX directory."""
    from tcxhooks.v1 import monitor_service_pb2, monitor_service_pb2_grpc

    channel = await _running(config, "monitor")
    if channel is not None:
        stub = monitor_service_pb2_grpc.MonitorServiceStub(channel)
        try:
            for attempt in range(DIRECTORY_WAIT * 2):  # a monitor that just started polls the directory first
                try:
                    queues = await stub.ListQueues(monitor_service_pb2.ListQueuesRequest(), timeout=10)
                    break
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == DIRECTORY_WAIT * 2 - 1:
                        raise RuntimeError(f"the running monitor answered {exc.code().name}: {exc.details()}") \
                            from None
                    await asyncio.sleep(0.5)
            extensions = await stub.ListExtensions(monitor_service_pb2.ListExtensionsRequest(), timeout=10)
        finally:
            await channel.close()
        return ({e.number for e in extensions.extensions}, {q.number for q in queues.queues},
                "as the running monitor polled it")
    if not config.monitor.pbx.url:
        raise RuntimeError("[pbx] url is not set")
    from tcxhooks.monitor.pbx.client import PbxClient
    from tcxhooks.monitor.status.xapi import Xapi

    pbx = PbxClient(config.monitor.pbx)
    try:
        xapi = Xapi(pbx)
        return {u.number for u in await xapi.users()}, {q.number for q in await xapi.queues()}, "read by check"
    finally:
        await pbx.aclose()


async def check_directory(config: Product) -> list[Verdict]:
    """The endpoints' queue and user filters against the PBX directory: a number the PBX does not have
    would let nothing through."""
    filtered = [hook for hook in config.dispatcher.webhooks if hook.queues or hook.users]
    if not filtered:
        return []
    try:
        extensions, queues, how = await _directory(config)
    except Exception as exc:  # the PBX lines above say why it cannot be read
        return [Verdict("directory", False, f"cannot read the PBX directory: {exc}",
                        "fix the pbx items above, then check again")]
    verdicts = []
    for hook in filtered:
        unknown = [f"queue {q}" for q in hook.queues if q not in queues]
        unknown += [f"extension {u}" for u in hook.users if u not in extensions]
        known = ", ".join([f"queues {', '.join(hook.queues)}"] * bool(hook.queues) +
                          [f"extensions {', '.join(hook.users)}"] * bool(hook.users))
        detail = f"{', '.join(unknown)} not in the PBX directory" if unknown else f"{known} exist"
        verdicts.append(Verdict(f"filters {hook.name}", not unknown, f"[{hook.title}] {detail} ({how})",
                                f"set [{hook.title}] queues / users to numbers the 3CX console lists"))
    return verdicts


async def check_s3(config: Product) -> list[Verdict]:
    recordings = config.media.recordings
    if recordings.storage != "s3":
        return [Verdict("storage", True, f"local folder {os.path.abspath(recordings.local_dir)}")]
    from tcxhooks.media.storage import Redirect, make_storage

    key = f"tcxhooks-check/{uuid.uuid4()}.txt"
    storage = make_storage(recordings)
    try:
        await storage.setup()
        await storage.put(key, io.BytesIO(b"tcxhooks check"), len(b"tcxhooks check"), {"purpose": "check"})
        link = await storage.resolve(key)
        if not isinstance(link, Redirect):
            raise RuntimeError("no presigned URL for the test object")
        async with httpx.AsyncClient(timeout=10) as client:
            reply = await client.get(link.url)
        if reply.status_code != 200 or reply.content != b"tcxhooks check":
            raise RuntimeError(f"presigned URL answered {reply.status_code}")
        await storage.delete(key)
    except Exception as exc:  # bucket, write or presign failed: the message says which
        return [Verdict("s3", False, str(exc),
                        "check [recordings] s3_endpoint, s3_bucket, s3_access_key/s3_secret_key and s3_secure")]
    return [Verdict("s3", True, f"bucket {recordings.s3_bucket}: write, presigned read and delete work")]


async def check_link_key(config: Product) -> list[Verdict]:
    recordings = config.media.recordings
    if not recordings.enabled:
        return []
    if not recordings.link_secret:
        return [Verdict("link key", True, "[recordings] link_secret is not set: the links' key lives only in the "
                        "store, so wiping or replacing the store breaks every link sent (403)",
                        "set [recordings] link_secret (or TCXH_RECORDINGS_LINK_SECRET), e.g. to `openssl rand -hex "
                        "32`; links already sent stay valid while the generated key is in the store", warning=True)]
    previous = " (and link_secret_previous, for links sent before the rotation)" if recordings.link_secret_previous \
        else ""
    return [Verdict("link key", True, f"[recordings] link_secret signs the links{previous}")]


async def check_endpoints(config: Product) -> list[Verdict]:
    from tcxhooks.v1 import dispatcher_service_pb2 as pb
    from tcxhooks.v1 import dispatcher_service_pb2_grpc as pbg

    fix = "the endpoint must answer 2xx to a POST (event=ping); check the URL, TLS and the CRM's logs"
    channel = await _running(config, "dispatcher")
    if channel is None:
        from tcxhooks.dispatcher.server import ping_all

        results = await ping_all(config.dispatcher)
        how = "sent by check"
    else:
        try:
            results = list((await pbg.DispatcherServiceStub(channel).PingEndpoint(
                pb.PingEndpointRequest(), timeout=60)).results)
        finally:
            await channel.close()
        how = "sent by the running dispatcher"
    urls = {hook.name: redacted_url(hook.url) for hook in config.dispatcher.webhooks}
    kinds = {**{hook.name: "webhook" for hook in config.dispatcher.webhooks},
             **{crm.name: "crm" for crm in config.dispatcher.crms}}
    return [
        Verdict(f"{kinds.get(r.endpoint, 'endpoint')} {r.endpoint}", r.ok,
                f"{urls.get(r.endpoint, '')}: " + (f"HTTP {r.http_status} in {r.latency_seconds * 1000:.0f} ms"
                                                    if r.ok else (r.error or f"HTTP {r.http_status}")) + f" ({how})",
                fix)
        for r in results
    ]


async def check_crms(config: Product) -> list[Verdict]:
    """Read-only probes of each [crm:NAME] adapter (auth, line, user map, click-to-call)."""
    from tcxhooks.dispatcher.crm.checking import check_crms as probe

    return [Verdict(line.item, line.ok, line.detail, line.fix)
            for line in await probe(config.dispatcher, config.platform.store.url)]


async def check_yandex(config: Product) -> list[Verdict]:
    a = config.analytics.analytics
    if not a.enabled:
        return [Verdict("analytics", True, "disabled")]
    if a.backend == "offline":
        from importlib.util import find_spec

        if find_spec("faster_whisper") is None:
            return [Verdict("analytics", False, "backend offline but the offline engine is not installed",
                            "pip install 'tcxhooks[offline]'")]
        return [Verdict("analytics", True, "offline engine installed")]
    from tcxhooks.analytics.errors import AnalyticsError
    from tcxhooks.analytics.yandex.http import auth_headers

    fix = ("check [analytics] api_key (or iam_token, or iam_token_file) and folder_id; the service account needs "
           "ai.speechkit-stt.user")
    try:
        headers = auth_headers(a)  # the service's own: the same key, token or token file
    except AnalyticsError as exc:
        return [Verdict("yandex", False, str(exc),
                        "write the current IAM token there (yc iam create-token > FILE), and keep it fresh")]
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            # An unknown operation id: 401/403 means the credentials are refused, 404 that they work.
            reply = await client.get(f"{a.operation_url}/operations/tcxhooks-check-{uuid.uuid4().hex[:8]}",
                                     headers=headers)
    except httpx.HTTPError as exc:
        return [Verdict("yandex", False, f"{a.operation_url} unreachable: {type(exc).__name__}", fix)]
    if reply.status_code in (401, 403):
        return [Verdict("yandex", False, f"credentials refused (HTTP {reply.status_code})", fix)]
    return [Verdict("yandex", True, f"credentials accepted by {a.operation_url}")]


async def check_exposure(config: Product) -> list[Verdict]:
    """What the configuration leaves open: services without a token fail, the rest are warnings."""
    problem = open_without_token(config.platform.services)
    verdicts = [Verdict("services token", not problem, problem or (
        "set" if config.platform.services.token else "none, and every service address is loopback"),
        "set [services] token for every service and the CLI")]
    for settings in (config.monitor, config.dispatcher, config.media, config.analytics):
        verdicts += [Verdict("exposure", True, risk, warning=True) for risk in settings.risks()]
    return verdicts


async def run_checks(config: Product) -> list[Verdict]:
    verdicts = [Verdict("config", True, f"{config.path}: {len(config.dispatcher.webhooks)} endpoint(s), "
                                        f"{len(config.dispatcher.crms)} CRM adapter(s), "
                                        f"store {config.platform.store.url.split('://')[0]}, "
                                        f"recordings {config.media.recordings.storage}")]
    for step in (check_exposure, check_store, check_pbx, check_directory, check_s3, check_link_key, check_endpoints,
                 check_crms, check_yandex):
        item = step.__name__.removeprefix("check_")
        try:
            verdicts += await step(config)
        except grpc.aio.AioRpcError as exc:
            detail = f"a running service answered {exc.code().name}: {exc.details()}"
            fix = ""
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                detail += f"; check sent {describe_token(config.config)}"
                fix = "give check the services' [services] token (the same ini file, or TCXH_SERVICES_TOKEN)"
            verdicts.append(Verdict(item, False, detail, fix))
        except Exception as exc:  # a check that breaks is a failed check, never a crash
            verdicts.append(Verdict(item, False, f"check failed: {exc}"))
    return verdicts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tcxhooks check", description="Validate the configuration and reach "
                                     "every dependency (PBX, store, S3, webhook endpoints, CRM adapters, Yandex).")
    add_config_option(parser)
    args = parser.parse_args(argv)
    try:
        config = load_product(find_config(args.config))
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(Verdict("config", False, line).lines()[0])
        raise SystemExit(2) from None
    verdicts = asyncio.run(run_checks(config))
    scrub = RedactingFilter(config.config.secrets()).scrub  # a secret in an error message, a URL's token
    for verdict in verdicts:
        print(scrub("\n".join(verdict.lines())))
    failed = [v for v in verdicts if not v.ok]
    warned = sum(v.warning for v in verdicts if v.ok)
    warnings = f" ({warned} warning{'s' if warned > 1 else ''})" if warned else ""
    print(f"\n{len(failed)} of {len(verdicts)} checks failed{warnings}" if failed
          else f"\nall {len(verdicts)} checks passed{warnings}")
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is printed and nothing is left to clean up. Skipping interpreter shutdown skips a gRPC
    # core thread racing it, which now and then aborted the process ("PyGILState_Release", exit -6:
    # 1 in 30 runs idle, 4 in 50 on a busy machine) after every check had passed.
    os._exit(1 if failed else 0)
