"""Dispatcher test fixtures: a real `tcxhooks dispatcher` process, a gRPC client, event builders."""

from __future__ import annotations

import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from tcxhooks.v1 import common_pb2, dispatcher_service_pb2_grpc, events_pb2
from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tests.helpers.postgres import postgres_schema
from tests.helpers.services import kill9, read_config, start, stop, wait_healthy, write_config

TOKEN = "dispatcher-test-token"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRET2 = "whsec_aGVsbG8gd29ybGQgc2Vjb25kIGtleSBmb3IgdGVzdHM="


@dataclass
class Dispatcher:
    """One dispatcher process and a client for it."""

    config: Path
    folder: Path
    name: str = "dispatcher"
    proc: subprocess.Popen[bytes] | None = None
    _channel: grpc.Channel | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return read_config(self.config)["services"]["dispatcher"]

    @property
    def metrics_port(self) -> int:
        return int(read_config(self.config)["metrics"]["port"])

    def metrics_text(self) -> str:
        """The Prometheus exposition of the running process, as a scraper reads it."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
            return reply.read().decode()

    def start(self) -> Dispatcher:
        self.proc = start(["dispatcher", "-c", str(self.config)], self.folder / f"{self.name}.log")
        wait_healthy(self.address, 30)
        return self

    def stop(self) -> int:
        assert self.proc is not None
        code = stop(self.proc)
        self.proc = None
        return code

    def kill9(self) -> None:
        assert self.proc is not None
        kill9(self.proc)
        self.proc = None

    def log(self) -> str:
        path = self.folder / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def stub(self) -> dispatcher_service_pb2_grpc.DispatcherServiceStub:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.address)
        return dispatcher_service_pb2_grpc.DispatcherServiceStub(self._channel)

    def call(self, method: str, request: Any, token: str | None = TOKEN, timeout: float = 10) -> Any:
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        return getattr(self.stub, method)(request, metadata=metadata, timeout=timeout)

    def publish(self, event: events_pb2.Event) -> pb.PublishResponse:
        return self.call("Publish", pb.PublishRequest(event=event))

    def deliveries(self, **kwargs: Any) -> list[pb.Delivery]:
        return list(self.call("ListDeliveries", pb.ListDeliveriesRequest(**kwargs)).deliveries)

    def settle(self, timeout: float = 20.0) -> None:
        """Waits until no delivery is pending (a receiver records a webhook before we commit its answer)."""
        deadline = time.monotonic() + timeout
        while self.deliveries(status=pb.DELIVERY_STATUS_PENDING):
            assert time.monotonic() < deadline, "deliveries still pending"
            time.sleep(0.05)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.proc is not None:
            self.stop()


class Dispatchers:
    """Makes dispatchers in a test's folder; stops them all at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: list[Dispatcher] = []

    def make(self, name: str = "dispatcher", started: bool = True, **sections: Any) -> Dispatcher:
        folder = self.folder / name
        folder.mkdir(exist_ok=True)
        sections.setdefault("services", {})
        sections["services"] = {"token": TOKEN, **sections["services"]}
        sections.setdefault("dispatcher", {})
        sections["dispatcher"] = {"retry_schedule": "1s,1s,1s", **sections["dispatcher"]}
        config = write_config(folder, **sections)
        dispatcher = Dispatcher(config, folder, name)
        self.made.append(dispatcher)
        return dispatcher.start() if started else dispatcher

    def close(self) -> None:
        for dispatcher in self.made:
            dispatcher.close()


@pytest.fixture
def dispatchers(tmp_path: Path) -> Iterator[Dispatchers]:
    made = Dispatchers(tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the local test database, first on the search path."""
    with postgres_schema("dispatcher_t") as url:
        yield url


# --- event builders ---------------------------------------------------------------------------

CALLER, DID = "79161234567", "74951234567"


def ringing(
    chain: str,
    link: int = 0,
    user: str = "101",
    user_type: int = common_pb2.USER_TYPE_EXT,
    did: str = DID,
    queue: str = "",
    event_id: str = "",
) -> events_pb2.Event:
    call = events_pb2.CallEvent(
        type=events_pb2.CALL_EVENT_TYPE_RINGING,
        call_id=f"{chain}-{link}",
        caller_id=CALLER,
        did=did,
        user=user,
        user_type=user_type,
        queue=queue,
    )
    return events_pb2.Event(event_id=event_id or f"{chain}-{link}/ringing/{user}", chain=chain, call=call)


def answered(
    chain: str,
    link: int = 1,
    user: str = "101",
    direction: int = common_pb2.DIRECTION_INCOMING,
    transfer_type: int = common_pb2.TRANSFER_TYPE_NOT_DEF,
    did: str = DID,
) -> events_pb2.Event:
    call = events_pb2.CallEvent(
        type=events_pb2.CALL_EVENT_TYPE_ANSWERED,
        call_id=f"{chain}-{link}",
        caller_id=CALLER,
        did=did,
        user=user,
        direction=direction,
        transfer_type=transfer_type,
    )
    return events_pb2.Event(event_id=f"{chain}-{link}/answered", chain=chain, call=call)


def ended(chain: str, link: int = 1, user: str = "101", **fields: Any) -> events_pb2.Event:
    values: dict[str, Any] = dict(
        type=events_pb2.CALL_EVENT_TYPE_ENDED,
        call_id=f"{chain}-{link}",
        caller_id=CALLER,
        did=DID,
        user=user,
        direction=common_pb2.DIRECTION_INCOMING,
        finish_type=common_pb2.FINISH_TYPE_OK,
        transfer=False,
        title="Main line, 0:01:05",
        duration_seconds=65,
        ring_seconds=4,
        did_name="Main line",
    )
    values.update(fields)
    return events_pb2.Event(event_id=f"{chain}-{link}/ended", chain=chain, call=events_pb2.CallEvent(**values))


def new_chain() -> str:
    return f"251125{uuid.uuid4().int % 10**6:06d}_{uuid.uuid4().int % 1000}"
