"""The probes of `tcxhooks check` (src/tcxhooks/check.py) for every dependency but the PBX: the store, S3,
the link key, the webhook endpoints, the CRM adapters, Yandex, and what the configuration leaves open."""

from __future__ import annotations

import io
import os
import uuid
from dataclasses import dataclass

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .platform.config import redacted_url
from .platform.grpc import open_channel, open_without_token
from .platform.store import open_store
from .product import Product


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


async def running(config: Product, service: str) -> grpc.aio.Channel | None:
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
        return [
            Verdict(
                "store",
                False,
                str(exc),
                "check [store] url; SQLite needs a writable folder, Postgres a reachable server and database",
            )
        ]
    return [Verdict("store", True, f"{url.split('://')[0]} store answers")]


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
        return [
            Verdict(
                "s3",
                False,
                str(exc),
                "check [recordings] s3_endpoint, s3_bucket, s3_access_key/s3_secret_key and s3_secure",
            )
        ]
    return [Verdict("s3", True, f"bucket {recordings.s3_bucket}: write, presigned read and delete work")]


async def check_link_key(config: Product) -> list[Verdict]:
    recordings = config.media.recordings
    if not recordings.enabled:
        return []
    if not recordings.link_secret:
        return [
            Verdict(
                "link key",
                True,
                "[recordings] link_secret is not set: the links' key lives only in the "
                "store, so wiping or replacing the store breaks every link sent (403)",
                "set [recordings] link_secret (or TCXH_RECORDINGS_LINK_SECRET), e.g. to `openssl rand -hex "
                "32`; links already sent stay valid while the generated key is in the store",
                warning=True,
            )
        ]
    previous = (
        " (and link_secret_previous, for links sent before the rotation)" if recordings.link_secret_previous else ""
    )
    return [Verdict("link key", True, f"[recordings] link_secret signs the links{previous}")]


async def check_endpoints(config: Product) -> list[Verdict]:
    from tcxhooks.v1 import dispatcher_service_pb2 as pb
    from tcxhooks.v1 import dispatcher_service_pb2_grpc as pbg

    fix = "the endpoint must answer 2xx to a POST (event=ping); check the URL, TLS and the CRM's logs"
    channel = await running(config, "dispatcher")
    if channel is None:
        from tcxhooks.dispatcher.server import ping_all

        results = await ping_all(config.dispatcher)
        how = "sent by check"
    else:
        try:
            results = list(
                (await pbg.DispatcherServiceStub(channel).PingEndpoint(pb.PingEndpointRequest(), timeout=60)).results
            )
        finally:
            await channel.close()
        how = "sent by the running dispatcher"
    urls = {hook.name: redacted_url(hook.url) for hook in config.dispatcher.webhooks}
    kinds = {
        **{hook.name: "webhook" for hook in config.dispatcher.webhooks},
        **{crm.name: "crm" for crm in config.dispatcher.crms},
    }
    return [
        Verdict(
            f"{kinds.get(r.endpoint, 'endpoint')} {r.endpoint}",
            r.ok,
            f"{urls.get(r.endpoint, '')}: "
            + (
                f"HTTP {r.http_status} in {r.latency_seconds * 1000:.0f} ms"
                if r.ok
                else (r.error or f"HTTP {r.http_status}")
            )
            + f" ({how})",
            fix,
        )
        for r in results
    ]


async def check_crms(config: Product) -> list[Verdict]:
    """Read-only probes of each [crm:NAME] adapter (auth, line, user map, click-to-call)."""
    from tcxhooks.dispatcher.crm.checking import check_crms as probe

    return [
        Verdict(line.item, line.ok, line.detail, line.fix)
        for line in await probe(config.dispatcher, config.platform.store.url)
    ]


async def check_yandex(config: Product) -> list[Verdict]:
    a = config.analytics.analytics
    if not a.enabled:
        return [Verdict("analytics", True, "disabled")]
    if a.backend == "offline":
        from importlib.util import find_spec

        if find_spec("faster_whisper") is None:
            return [
                Verdict(
                    "analytics",
                    False,
                    "backend offline but the offline engine is not installed",
                    "pip install 'tcxhooks[offline]'",
                )
            ]
        return [Verdict("analytics", True, "offline engine installed")]
    from tcxhooks.analytics.errors import AnalyticsError
    from tcxhooks.analytics.yandex.http import auth_headers

    fix = (
        "check [analytics] api_key (or iam_token, or iam_token_file) and folder_id; the service account needs "
        "ai.speechkit-stt.user"
    )
    try:
        headers = auth_headers(a)  # the service's own: the same key, token or token file
    except AnalyticsError as exc:
        return [
            Verdict(
                "yandex",
                False,
                str(exc),
                "write the current IAM token there (yc iam create-token > FILE), and keep it fresh",
            )
        ]
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            # An unknown operation id: 401/403 means the credentials are refused, 404 that they work.
            reply = await client.get(
                f"{a.operation_url}/operations/tcxhooks-check-{uuid.uuid4().hex[:8]}", headers=headers
            )
    except httpx.HTTPError as exc:
        return [Verdict("yandex", False, f"{a.operation_url} unreachable: {type(exc).__name__}", fix)]
    if reply.status_code in (401, 403):
        return [Verdict("yandex", False, f"credentials refused (HTTP {reply.status_code})", fix)]
    return [Verdict("yandex", True, f"credentials accepted by {a.operation_url}")]


async def check_exposure(config: Product) -> list[Verdict]:
    """What the configuration leaves open: services without a token fail, the rest are warnings."""
    problem = open_without_token(config.platform.services)
    verdicts = [
        Verdict(
            "services token",
            not problem,
            problem or ("set" if config.platform.services.token else "none, and every service address is loopback"),
            "set [services] token for every service and the CLI",
        )
    ]
    for settings in (config.monitor, config.dispatcher, config.media, config.analytics):
        verdicts += [Verdict("exposure", True, risk, warning=True) for risk in settings.risks()]
    return verdicts
