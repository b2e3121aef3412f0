"""Requests are held to their RPC's size and must be their RPC's message, through a real dispatcher.

Most RPCs take 256 KiB; the dispatcher's publishing RPCs more (a transcript, a batch of events).
Anything larger is refused (RESOURCE_EXHAUSTED), bytes that are not the message INVALID_ARGUMENT;
both counted. A service with the token still serves what fits.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from tcxhooks.platform.limits import DEFAULT_REQUEST, MIB
from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tcxhooks.v1 import events_pb2

from .served import served

TOKEN = "platform-limits-test-token"


def padded(size: int) -> bytes:
    """A valid message of any RPC: `size` bytes of an unknown length-delimited field (number 1000)."""
    tag = bytes([0xC2, 0x3E])  # (1000 << 3) | 2 as a varint
    body = size - 8
    length = bytearray()
    value = body
    while True:
        low, value = value & 0x7F, value >> 7
        length.append(low | (0x80 if value else 0))
        if not value:
            break
    return tag + bytes(length) + b"x" * body


def batch_of(size: int) -> bytes:
    """A PublishBatchRequest of about `size` bytes of analytics events (long transcripts)."""
    text = "слово " * 5000
    events = []
    while sum(e.ByteSize() for e in events) < size:
        n = len(events)
        events.append(
            events_pb2.Event(
                event_id=f"analytics:{n}",
                chain=f"260101120000_{n}",
                analytics=events_pb2.AnalyticsReady(call_id=f"260101120000_{n}-1", text=text),
            )
        )
    return pb.PublishBatchRequest(events=events).SerializeToString()


def test_requests_are_held_to_their_rpcs_limit_and_refusals_are_counted(tmp_path: Path) -> None:
    with served(tmp_path, "dispatcher", services={"token": TOKEN}) as service:
        assert service.raw("ListEndpoints", padded(DEFAULT_REQUEST - 100), token=TOKEN)[0] == grpc.StatusCode.OK
        code, details = service.raw("ListEndpoints", padded(DEFAULT_REQUEST + 100), token=TOKEN)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and f"at most {DEFAULT_REQUEST}" in details
        assert service.metric("tcxhooks_grpc_refused_total", reason="too_large") == 1

        # a transcript-sized publish passes; above the largest limit gRPC refuses without reading
        assert service.raw("PublishBatch", batch_of(6 * MIB), token=TOKEN)[0] == grpc.StatusCode.OK
        code, details = service.raw("PublishBatch", padded(9 * MIB), token=TOKEN)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details

        code, details = service.raw("SetEndpointState", b"\x0a\xff\xff\xff\xff\x0f", token=TOKEN)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "not this RPC's message" in details
        assert service.metric("tcxhooks_grpc_refused_total", reason="malformed") == 1
        assert service.raw("ListEndpoints", b"", token=TOKEN)[0] == grpc.StatusCode.OK
