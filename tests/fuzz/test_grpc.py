"""Fuzz: gRPC requests of wrong types and sizes, to every RPC of the four services running under `tcxhooks up`.

Each example calls one RPC (with the token) with either bytes that are not its message, or its message
filled with hostile values (any number in any numeric field, unknown enum values, timestamps far in the
past or future, long and odd strings, large repeated fields). Every answer is a status the RPC's
errors give (never INTERNAL or UNKNOWN: those are bugs), within its deadline (never a hang), and every
request that is not its RPC's message is refused as such and counted.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as d
from google.protobuf.message import DecodeError, Message
from hypothesis import given
from hypothesis import strategies as st

from tcxhooks.v1 import analytics_service_pb2, dispatcher_service_pb2, media_service_pb2, monitor_service_pb2
from tests.helpers.services import read_config, start, stop, wait_healthy, write_config

from .profile import fuzz

TOKEN = "fuzz-grpc-token"
MODULES = {
    "monitor": monitor_service_pb2,
    "dispatcher": dispatcher_service_pb2,
    "media": media_service_pb2,
    "analytics": analytics_service_pb2,
}
OFFSET = {"monitor": 0, "dispatcher": 1, "media": 2, "analytics": 3}  # the metrics ports under `up`
METHODS = [
    (name, method)
    for name, module in MODULES.items()
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]
# Streams that last until the caller ends them (a capture session): read for a moment, then let go.
SUBSCRIPTIONS = {"Capture"}
BUGS = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAUTHENTICATED,
}
F = d.FieldDescriptor
INTS = {
    F.TYPE_INT32: 31,
    F.TYPE_SINT32: 31,
    F.TYPE_SFIXED32: 31,
    F.TYPE_INT64: 63,
    F.TYPE_SINT64: 63,
    F.TYPE_SFIXED64: 63,
}
UINTS = {F.TYPE_UINT32: 32, F.TYPE_FIXED32: 32, F.TYPE_UINT64: 64, F.TYPE_FIXED64: 64}
strings = st.text(max_size=60) | st.sampled_from(
    ["", "../etc/passwd", "1" * 300, "ext:101", "260101120000_1-1", "%00", "*", "msg_" + "f" * 32, "-1", "\u202e"]
)


def scalar(field: d.FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in INTS:
        bits = INTS[field.type]
        return st.integers(-(2**bits), 2**bits - 1) | st.sampled_from([0, -1, 1, 2**bits - 1])
    if field.type in UINTS:
        return st.integers(0, 2 ** UINTS[field.type] - 1)
    if field.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=64 if field.type == F.TYPE_DOUBLE else 32)
    if field.type == F.TYPE_BOOL:
        return st.booleans()
    if field.type == F.TYPE_ENUM:
        return st.integers(-(2**31), 2**31 - 1) | st.sampled_from([v.number for v in field.enum_type.values])
    if field.type == F.TYPE_BYTES:
        return st.binary(max_size=300)
    return strings


def message(descriptor: d.Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Values for some fields of `descriptor` (nested messages two levels down)."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.type == F.TYPE_MESSAGE:
            if depth >= 2:
                continue
            if field.message_type.full_name == "google.protobuf.Timestamp":
                one: st.SearchStrategy[Any] = st.fixed_dictionaries(
                    {
                        "seconds": st.integers(-62135596800, 253402300799) | st.integers(-(2**63), 2**63 - 1),
                        "nanos": st.integers(0, 999_999_999) | st.integers(-(2**31), 2**31 - 1),
                    }
                )
            else:
                one = st.deferred(lambda f=field: message(f.message_type, depth + 1))
        else:
            one = scalar(field)
        fields[field.name] = st.lists(one, max_size=40 if depth == 0 else 3) if field.is_repeated else one
    return st.fixed_dictionaries({}, optional=fields)


def fill(target: Message, values: dict[str, Any]) -> None:
    for name, value in values.items():
        field = target.DESCRIPTOR.fields_by_name[name]
        if field.type == F.TYPE_MESSAGE:
            for item in value if field.is_repeated else [value]:
                fill(getattr(target, name).add() if field.is_repeated else getattr(target, name), item)
        elif field.is_repeated:
            getattr(target, name).extend(value)
        else:
            setattr(target, name, value)


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("fuzz-grpc")
    config = write_config(
        folder,
        pbx={"url": "http://127.0.0.1:9", "client_id": "c", "client_secret": "s"},
        webhook={"url": "http://127.0.0.1:9/crm"},
        services={"token": TOKEN},
    )
    up = start(["up", "-c", str(config)], folder / "up.log")
    try:
        addresses = read_config(config)["services"]
        for name in MODULES:
            wait_healthy(addresses[name], 90, service="liveness")
        yield config
    finally:
        stop(up)
    # what the requests left behind (an event the worker cannot render, a crashed loop) shows here
    log = (folder / "up.log").read_text(errors="replace")
    assert "Traceback" not in log and "crashed" not in log, log[-3000:]


def malformed(config: Path, service: str) -> float:
    port = int(read_config(config)["metrics"]["port"]) + OFFSET[service]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    found = re.search(rf'tcxhooks_grpc_refused_total\{{reason="malformed",service="{service}"\}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def call(config: Path, service: str, method: d.MethodDescriptor, request: bytes) -> tuple[grpc.StatusCode, str]:
    path = f"/{method.containing_service.full_name}/{method.name}"
    metadata = [("authorization", f"Bearer {TOKEN}")]
    with grpc.insecure_channel(read_config(config)["services"][service]) as channel:
        try:
            if method.client_streaming:
                list(channel.stream_stream(path)(iter([request, request]), timeout=20, metadata=metadata))
            elif method.name in SUBSCRIPTIONS:
                try:
                    list(channel.unary_stream(path)(request, timeout=1, metadata=metadata))
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                        raise
            elif method.server_streaming:
                list(channel.unary_stream(path)(request, timeout=20, metadata=metadata))
            else:
                channel.unary_unary(path)(request, timeout=20, metadata=metadata)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def parses(service: str, method: d.MethodDescriptor, request: bytes) -> bool:
    try:
        getattr(MODULES[service], method.input_type.name).FromString(request)
    except DecodeError:
        return False
    return True


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, d.MethodDescriptor, bytes, bool]:
    service, method = draw(st.sampled_from(METHODS))
    if draw(st.booleans()):
        # a field number of the wrong wire type, a length beyond the end, or random bytes
        garbage = draw(
            st.sampled_from([b"\x0a\xff\xff\xff\xff\x0f", b"\x08", b"\x0d\x01", b"\xff"])
            | st.binary(min_size=1, max_size=200)
        )
        return service, method, garbage, True
    built = getattr(MODULES[service], method.input_type.name)()
    fill(built, draw(message(method.input_type)))
    return service, method, built.SerializeToString(), False


@fuzz(examples=150, deadline_ms=None)
@given(st.lists(requests(), min_size=1, max_size=3))
def test_hostile_requests_get_a_deliberate_answer_and_malformed_ones_are_counted(
    product: Path, batch: list[tuple[str, d.MethodDescriptor, bytes, bool]]
) -> None:
    for service, method, request, raw in batch:
        before = malformed(product, service)
        code, details = call(product, service, method, request)
        assert code not in BUGS, f"{service} {method.name}: {code.name} {details} for {request[:80]!r}"
        if raw and not parses(service, method, request):
            assert code == grpc.StatusCode.INVALID_ARGUMENT and "not this RPC's message" in details
            assert malformed(product, service) >= before + 1
