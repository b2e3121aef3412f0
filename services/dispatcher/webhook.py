"""A webhook endpoint as a sink: one signed POST per delivery (docs/webhooks.md §1).

sink = WebhookSink(hook, open_transport(...), zone)   # the bodies' times in zone (None: the host's)
result = await sink.deliver(delivery)     # 2xx → DELIVERED, 410 → GONE, anything else → RETRY
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

from google.protobuf.message import DecodeError

from tcxhooks import __version__
from tcxhooks.platform.config import redacted_url
from tcxhooks.signing import Signer
from tcxhooks.v1 import events_pb2

from .config import WebhookConfig
from .payloads import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, render
from .retry import parse_retry_after
from .sinks import Delivery, Result, Verdict
from .transport import Reply, Transport, TransportError

USER_AGENT = f"tcxhooks/{__version__}"


def webhook_headers(
    content_type: str, signer: Signer, msg_id: str, sequence: int, endpoint_sequence: int, body: bytes
) -> dict[str, str]:
    """The headers of one POST: Standard Webhooks id, timestamp and signature, and our sequences."""
    timestamp = int(time.time())
    headers = {
        "content-type": content_type,
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "x-tcxhooks-sequence": str(sequence),
        "x-tcxhooks-endpoint-sequence": str(endpoint_sequence),
    }
    if signer:
        headers["webhook-signature"] = signer.sign(msg_id, timestamp, body)
    return headers


def ping_event() -> tuple[str, events_pb2.Event]:
    """A `webhook.ping` event with a fresh id (docs/webhooks.md §4, "Test ping")."""
    ping_id = str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event = events_pb2.Event(event_id=f"ping/{ping_id}", chain="ping", ping=events_pb2.Ping(id=ping_id, time=stamp))
    event.occur_time.GetCurrentTime()
    return ping_id, event


def _result(reply: Reply) -> Result:
    status = reply.status
    response = reply.snippet.decode("utf-8", "replace")
    if 200 <= status < 300:
        return Result(Verdict.DELIVERED, status, response)
    if status == 410:
        return Result(Verdict.GONE, status, response, "410 Gone")
    retry_after = parse_retry_after(reply.retry_after) if status in (429, 503) else None
    return Result(Verdict.RETRY, status, response, f"HTTP {status}", retry_after)


class WebhookSink:
    def __init__(self, hook: WebhookConfig, transport: Transport, zone: dt.tzinfo | None) -> None:
        self.hook = hook
        self.transport = transport
        self.zone = zone
        self.signer = Signer(hook.secret)
        self.content_type = FORM_CONTENT_TYPE if hook.format == "form" else JSON_CONTENT_TYPE

    @property
    def kind(self) -> str:
        return self.hook.format

    @property
    def target(self) -> str:
        return redacted_url(self.hook.url)

    async def deliver(self, delivery: Delivery) -> Result:
        try:
            # validated before it was stored; an event damaged since fails to render
            body = render(delivery.event, self.hook.format, self.zone)
        except (DecodeError, KeyError, ValueError) as exc:
            return Result(Verdict.DEAD, error=f"cannot render: {exc}")
        return await self._post(
            body,
            webhook_headers(
                self.content_type, self.signer, delivery.message_id, delivery.sequence, delivery.endpoint_sequence, body
            ),
        )

    async def ping(self) -> Result:
        ping_id, event = ping_event()
        body = render(event, self.hook.format)
        headers = webhook_headers(self.content_type, self.signer, f"msg_ping_{ping_id}", 1, 1, body)
        result = await self._post(body, headers)
        if result.verdict is Verdict.DELIVERED or not result.status:
            return result
        return result._replace(error=f"HTTP {result.status}: {result.response[:200]}")

    async def _post(self, body: bytes, headers: dict[str, str]) -> Result:
        try:
            reply = await self.transport.post(self.hook.url, body, headers)
        except TransportError as exc:
            return Result(Verdict.RETRY, error=str(exc))
        return _result(reply)

    async def close(self) -> None:
        await self.transport.close()
