"""Fuzz: XAPI answers, through the monitor's real PBX client (its status and JSON handling) and every XAPI read.

The PBX answers each GET with a hostile status and body: JSON of any shape, OData collections of hostile
rows with hostile counts, bytes that are not JSON, nesting deeper than a parser's stack. Every read of
the call graph's facts, the post-call check, outage recovery and the status poller either returns or
raises the PBX error its callers handle (PbxError, XapiError) — never anything else, never hangs — and
rows it cannot use are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from tcxhooks.monitor.config import PbxConfig
from tcxhooks.monitor.errors import PbxError
from tcxhooks.monitor.pbx import xapi
from tcxhooks.monitor.pbx.client import PbxClient
from tcxhooks.monitor.pbx.http import InProcess, PbxAnswer, PbxRequest
from tcxhooks.monitor.status.xapi import Xapi, XapiError

from .profile import deeply_nested, fuzz, json_values, run_bounded, text, with_fields

ROW = {
    "Id": st.integers(0, 5),
    "Number": st.sampled_from(["101", "102", "800"]) | text,
    "CallId": st.integers(0, 9) | text,
    "DID": text,
    "Name": text,
    "DisplayName": text,
    "StartTime": st.sampled_from(["2026-12-01T10:00:00Z", "2026-12-01T10:00:00.5+03:00", "", "yesterday"]) | text,
    "EndTime": st.sampled_from(["2026-12-01T10:05:00Z"]) | text,
    "Status": text,
    "QueueDnNumber": text,
    "Caller": text,
    "Callee": st.sampled_from(["79031112233", "101 Ivan Petrov"]) | text,
    "CallbacksCount": st.integers(-5, 5) | text,
    "Duration": st.sampled_from(["PT1M5S", "P1D", "00:01:05"]) | text,
}
rows = with_fields(ROW)
collections = st.builds(
    lambda page, count, extra: {"value": page, "@odata.count": count, **extra},
    st.lists(rows | json_values, max_size=6),
    st.integers(0, 8) | st.integers(10**6, 10**15) | json_values,
    st.dictionaries(text, json_values, max_size=2),
)
bodies = (
    collections.map(json.dumps) | st.builds(json.dumps, json_values) | text | st.integers(1000, 5000).map(deeply_nested)
).map(lambda body: body.encode("utf-8", "surrogatepass"))
answers = st.lists(
    st.tuples(st.sampled_from([200, 200, 200, 204, 302, 400, 403, 404, 500]), bodies | st.binary(max_size=64)),
    min_size=1,
    max_size=6,
)

READS: list[Callable[[PbxClient], Awaitable[Any]]] = [
    xapi.trunk_dids,
    xapi.inbound_rules,
    xapi.active_call_numbers,
    lambda pbx: xapi.active_call_numbers(pbx, [1, 2]),
    lambda pbx: xapi.active_call_parties(pbx, [1, 2]),
    lambda pbx: xapi.inbound_calls(pbx, 1_800_000_000, 1_800_000_600),
    lambda pbx: xapi.callbacks_count(pbx, "800", 1_800_000_000, 1_800_000_600),
    lambda pbx: xapi.recordings(pbx, "101", 1_800_000_000, 1_800_000_600),
    lambda pbx: xapi.call_start_times(pbx, [1, 2, 3]),
    lambda pbx: xapi.call_logs(pbx, [1, 2], 1_800_000_000, 1_800_000_600),
    xapi.call_log_readable,
    lambda pbx: xapi.call_log_period(pbx, 1_800_000_000, 1_800_000_600),
    lambda pbx: Xapi(pbx, page_size=4).users(),
    lambda pbx: Xapi(pbx, page_size=4).queues(),
    lambda pbx: Xapi(pbx, page_size=4).agents(1),
    lambda pbx: Xapi(pbx, page_size=4).login_history(
        dt.datetime(2026, 12, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    ),
]


def hostile_pbx(answers: list[tuple[int, bytes]]) -> PbxClient:
    served = itertools.cycle(answers)

    async def handle(request: PbxRequest) -> PbxAnswer:
        await asyncio.sleep(0)  # as the network would, lets a read that never ends be timed out
        if request.path == "/connect/token":
            return PbxAnswer.json(200, {"access_token": "fuzz-token", "expires_in": 3600})
        status, body = next(served)
        return PbxAnswer(status, body, "application/json")

    config = PbxConfig(url="https://pbx.example.com", client_id="fuzz", client_secret="fuzz-secret")
    return PbxClient(config, InProcess(handle))


async def read_all(answers: list[tuple[int, bytes]]) -> None:
    pbx = hostile_pbx(answers)
    try:
        for read in READS:
            with contextlib.suppress(PbxError, XapiError):
                await read(pbx)
    finally:
        await pbx.aclose()


BILLIONS = json.dumps({"value": [{"Id": 1, "Number": "101"}], "@odata.count": 10**9}).encode()


@fuzz(examples=60, deadline_ms=None)
@example([(200, BILLIONS)])  # a PBX claiming more rows than it sends: paging must not go on for ever
@given(answers)
def test_hostile_xapi_answers_raise_only_pbx_errors(answers: list[tuple[int, bytes]]) -> None:
    run_bounded(lambda: read_all(answers), 10)
