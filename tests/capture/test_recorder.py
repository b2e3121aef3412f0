"""The recorder hook: nothing is built while nobody listens, a slow listener is cut off rather than slowing the
monitor, and a standby refuses to be captured (FAILED_PRECONDITION through MonitorService.Capture)."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from tcxhooks.monitor.capture.recorder import Recorder
from tcxhooks.monitor.capture.session import Capture
from tcxhooks.monitor.errors import CaptureOverrun, NotActive


class Exploding:
    def __repr__(self) -> str:
        raise AssertionError("serialised although nobody listens")


def test_nothing_is_serialised_without_a_listener() -> None:
    Recorder().record("frame", text=Exploding())


async def test_a_listener_gets_records_in_order_then_is_cut_off_when_it_falls_behind() -> None:
    recorder = Recorder(clock=lambda: 12.5, limit=3)
    with recorder.listen() as listener:
        recorder.record("frame", text="a")
        recorder.record("xapi", path="/xapi/v1/ActiveCalls", body={"value": []})
        assert json.loads(await listener.next(1) or "") == {"t": 12.5, "kind": "frame", "text": "a"}
        assert json.loads(await listener.next(1) or "")["kind"] == "xapi"
        assert await listener.next(0.01) is None
        for n in range(5):
            recorder.record("frame", text=str(n))
        with pytest.raises(CaptureOverrun) as info:
            await listener.next(1)
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not recorder.listening


async def test_a_standby_refuses_to_be_captured() -> None:
    capture = Capture(Recorder(), None, None, "en")  # type: ignore[arg-type]  # a standby touches neither
    with pytest.raises(NotActive) as info:
        await capture.lines(60).__anext__()
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_record_too_large_for_one_message_keeps_its_kind_time_and_size() -> None:
    recorder = Recorder(clock=lambda: 3.0)
    with recorder.listen() as listener:
        recorder.record("xapi", path="/xapi/v1/Users", body={"value": ["x" * (9 * 1024 * 1024)]})
        line = await listener.next(1)
    assert line is not None and len(line) < 100
    record = json.loads(line)
    assert record["kind"] == "xapi" and record["t"] == 3.0 and record["omitted"] > 9 * 1024 * 1024


def test_a_lone_surrogate_still_makes_a_valid_line() -> None:
    recorder = Recorder()

    async def take() -> str | None:
        with recorder.listen() as listener:
            recorder.record("frame", text="name \ud800")
            return await listener.next(1)

    line = asyncio.run(take())
    assert line is not None and json.loads(line)["text"] == "name \ud800" and line.isascii()
