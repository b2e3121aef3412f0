"""The XAPI reads of the monitor (docs/3cx.md §5): trunk DIDs, inbound rules, active calls, reports, recordings,
the call log.

Every function takes the shared PbxClient and returns plain data; garbage rows are skipped and
counted, an unusable answer raises PbxError.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ..errors import PbxError
from ..facts import Rule
from ..metrics import MALFORMED
from .client import PbxClient

log = logging.getLogger(__name__)


def _rows(body: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise PbxError(f"XAPI {what}: the answer has no 'value' list")
    rows = [row for row in body["value"] if isinstance(row, dict)]
    if len(rows) != len(body["value"]):
        MALFORMED.labels("xapi_row").inc(len(body["value"]) - len(rows))
    return rows


def iso(moment: float) -> str:
    """Unix seconds → the UTC literal XAPI functions take (2025-11-25T18:45:00Z)."""
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


async def trunk_dids(pbx: PbxClient) -> dict[str, list[str]]:
    rows = _rows(await pbx.get_json("/xapi/v1/Trunks", {"$select": "Number,DidNumbers"}), "Trunks")
    out: dict[str, list[str]] = {}
    for row in rows:
        number, dids = row.get("Number"), row.get("DidNumbers")
        if isinstance(number, str) and isinstance(dids, list):
            out[number] = [str(d) for d in dids if isinstance(d, (str, int))]
    return out


async def inbound_rules(pbx: PbxClient) -> list[Rule]:
    rows = _rows(await pbx.get_json("/xapi/v1/InboundRules", {"$select": "Id,RuleName,Data"}), "InboundRules")
    return [
        Rule(str(r["RuleName"]), str(r["Data"]))
        for r in rows
        if isinstance(r.get("RuleName"), str) and isinstance(r.get("Data"), (str, int))
    ]


async def _active_rows(pbx: PbxClient, among: list[int] | None, select: str) -> list[dict[str, Any]]:
    """ActiveCalls rows with the given `$select`; with `among`, only those call numbers (a short `$filter`)."""
    rows: list[dict[str, Any]] = []
    batches = [among[i : i + 20] for i in range(0, len(among), 20)] if among is not None else [[]]
    for batch in batches:
        params = {"$select": select}
        if batch:
            params["$filter"] = " or ".join(f"Id eq {int(n)}" for n in batch)
        rows.extend(
            r
            for r in _rows(await pbx.get_json("/xapi/v1/ActiveCalls", params), "ActiveCalls")
            if isinstance(r.get("Id"), int)
        )
    return rows


async def active_call_numbers(pbx: PbxClient, among: list[int] | None = None) -> set[int]:
    """Call numbers the PBX still has (XAPI ActiveCalls.Id, assumed equal to Call Control `callid`);
    with `among`, only those are asked about (a short `$filter` instead of every live call)."""
    return {int(r["Id"]) for r in await _active_rows(pbx, among, "Id")}


async def active_call_parties(pbx: PbxClient, among: list[int]) -> dict[int, tuple[str, ...]]:
    """The calls among `among` the PBX still has, each with its `Caller` and `Callee` texts ("<number> <name>"):
    the one place the PBX names a number outside it that a call went on to (docs/3cx.md §5.6)."""
    return {
        int(r["Id"]): tuple(str(r[k]) for k in ("Caller", "Callee") if isinstance(r.get(k), str) and r[k])
        for r in await _active_rows(pbx, among, "Id,Caller,Callee")
    }


@dataclass
class InboundCall:
    did: str
    rule_name: str
    caller: str
    start: float


async def inbound_calls(pbx: PbxClient, start: float, end: float) -> list[InboundCall]:
    path = (
        f"/xapi/v1/ReportInboundCalls/Pbx.GetInboundCalls(periodFrom={iso(start)},periodTo={iso(end)},"
        f"trunkDns='',callsType=0)"
    )
    out = []
    for row in _rows(await pbx.get_json(path), "ReportInboundCalls"):
        moment = parse_time(row.get("StartTime"))
        if moment is not None and isinstance(row.get("Did"), str):
            out.append(
                InboundCall(row["Did"], str(row.get("RuleName") or ""), str(row.get("SourceCallerId") or ""), moment)
            )
    return out


async def callbacks_count(pbx: PbxClient, queue: str, start: float, end: float) -> int:
    """Callbacks ordered in `queue` over [start, end] (a per-queue count, not a per-call flag: §4.3)."""
    path = (
        f"/xapi/v1/ReportQueueCallbacks/Pbx.GetQueueCallbacksData(startDt={iso(start)},endDt={iso(end)},"
        f"queueDnStr='{queue}')"
    )
    total = 0
    for row in _rows(await pbx.get_json(path), "ReportQueueCallbacks"):
        if str(row.get("QueueDnNumber", queue)) == queue and isinstance(row.get("CallbacksCount"), int):
            total += row["CallbacksCount"]
    return total


async def recordings(pbx: PbxClient, dn: str, start: float, end: float) -> list[dict[str, Any]]:
    """XAPI Recordings rows of `dn` overlapping [start, end] (± a few seconds), oldest first."""
    odata_dn = dn.replace("'", "''")
    flt = (
        f"(FromDn eq '{odata_dn}' or ToDn eq '{odata_dn}') and StartTime le {iso(end + 5)}"
        f" and EndTime ge {iso(start - 5)}"
    )
    body = await pbx.get_json("/xapi/v1/Recordings", {"$filter": flt, "$orderby": "Id asc", "$top": "100"})
    return [r for r in _rows(body, "Recordings") if isinstance(r.get("Id"), int)]


async def call_start_times(pbx: PbxClient, numbers: list[int]) -> dict[int, float]:
    """ActiveCalls.EstablishedAt (unix seconds) of the given call numbers, where the PBX reports one."""
    out: dict[int, float] = {}
    for i in range(0, len(numbers), 20):
        flt = " or ".join(f"Id eq {int(n)}" for n in numbers[i : i + 20])
        body = await pbx.get_json("/xapi/v1/ActiveCalls", {"$select": "Id,EstablishedAt", "$filter": flt})
        for row in _rows(body, "ActiveCalls"):
            moment = parse_time(row.get("EstablishedAt"))
            if isinstance(row.get("Id"), int) and moment is not None:
                out[row["Id"]] = moment
    return out


_DURATION = re.compile(r"^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


def parse_duration(text: Any) -> float | None:
    """ISO 8601 duration as 3CX reports write it (PT8M42S, PT30.7S, PT1H2M3S) → seconds; None if it is not one."""
    match = _DURATION.match(text) if isinstance(text, str) and text != "PT" else None
    if match is None:
        return None
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@dataclass
class CallLogRow:
    """One `CallLogData` row (docs/3cx.md §5.6): the fields the post-call check compares, then those outage recovery
    builds webhooks from (ringing/talking None: the row had no readable ISO 8601 duration)."""

    start: float
    source_dn: str
    destination_dn: str
    answered: bool
    direction: str  # Inbound, "Inbound Queue", Outbound, Internal
    source_caller_id: str = ""
    destination_caller_id: str = ""
    ringing: float | None = None
    talking: float | None = None
    status: str = ""  # Answered, Unanswered, Redirected, Waiting (still going)
    source_name: str = ""  # SourceDisplayName, DestinationDisplayName: the party's name as the PBX shows it
    destination_name: str = ""


@dataclass
class CallLogPeriod:
    """The call-log rows of a period by 3CX call number (oldest first); `broken`: calls with an unusable row."""

    calls: dict[int, list[CallLogRow]] = field(default_factory=dict)
    broken: set[int] = field(default_factory=set)


# Every parameter is required; 0 / '' mean "all"; hidePcalls leaves out the PBX's internal plumbing (§5.6).
_CALL_LOG = (
    "/xapi/v1/ReportCallLogData/Pbx.GetCallLogData(periodFrom={start},periodTo={end},sourceType=0,"
    "sourceFilter='',destinationType=0,destinationFilter='',callsType=0,callTimeFilterType=0,"
    "callTimeFilterFrom='0:00:0',callTimeFilterTo='0:00:0',hidePcalls=true)"
)


def _call_of(row: dict[str, Any]) -> int | None:
    value = row.get("CallId")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _call_log_row(row: dict[str, Any]) -> CallLogRow | None:
    start = parse_time(row.get("StartTime"))
    texts = [row.get(k) for k in ("SourceDn", "DestinationDn", "Direction")]
    if start is None or not all(isinstance(t, str) for t in texts) or not isinstance(row.get("Answered"), bool):
        return None
    return CallLogRow(
        start,
        str(texts[0]),
        str(texts[1]),
        row["Answered"],
        str(texts[2]),
        _text(row.get("SourceCallerId")),
        _text(row.get("DestinationCallerId")),
        parse_duration(row.get("RingingDuration")),
        parse_duration(row.get("TalkingDuration")),
        _text(row.get("Status")),
        _text(row.get("SourceDisplayName")),
        _text(row.get("DestinationDisplayName")),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


CALL_LOG_BATCH = 20  # calls per read: one short `$filter` instead of one report query per call


def _collect(rows: list[dict[str, Any]], into: CallLogPeriod, wanted: set[int] | None = None) -> None:
    """Adds call-log rows to `into` by call. A row without a numeric `CallId` cannot be placed: counted and
    skipped; a call with a row lacking another field lands in `broken`."""
    for raw in rows:
        call_id = _call_of(raw)
        if call_id is not None and wanted is not None and call_id not in wanted:
            continue
        parsed = _call_log_row(raw) if call_id is not None else None
        if call_id is None or parsed is None:
            MALFORMED.labels("call_log_row").inc()
            if call_id is not None:
                into.broken.add(call_id)
            continue
        into.calls.setdefault(call_id, []).append(parsed)


def _oldest_first(period: CallLogPeriod) -> CallLogPeriod:
    for rows in period.calls.values():
        rows.sort(key=lambda r: r.start)
    return period


async def call_logs(pbx: PbxClient, call_ids: Collection[int], start: float, end: float) -> CallLogPeriod:
    """The call-log rows of these 3CX calls (Call Control `callid`s) that started in [start, end], by call,
    oldest first, read CALL_LOG_BATCH calls at a time. Needs System Owner rights (403 otherwise)."""
    path = _CALL_LOG.format(start=iso(start), end=iso(end))
    ids = sorted(set(call_ids))
    out = CallLogPeriod()
    for i in range(0, len(ids), CALL_LOG_BATCH):
        batch = ids[i : i + CALL_LOG_BATCH]
        params = {"$filter": " or ".join(f"CallId eq {int(n)}" for n in batch), "$top": str(200 * len(batch))}
        _collect(_rows(await pbx.get_json(path, params), "ReportCallLogData"), out, set(batch))
    return _oldest_first(out)


async def call_log_readable(pbx: PbxClient) -> str:
    """One page of the last minute's call log: what `tcxhooks check` shows (403 without System Owner rights)."""
    now = time.time()
    period = await call_log_period(pbx, now - 60, now)
    return f"XAPI call log readable ({len(period.calls)} call(s) in the last minute)"


PERIOD_PAGE = 1000
PERIOD_ROWS = 80_000  # the most a PBX answers for one report (REPORT_ROW_LIMIT, §5.6)


async def call_log_period(pbx: PbxClient, start: float, end: float) -> CallLogPeriod:
    """Every call-log row of the calls that started in [start, end], paged with `$top`/`$skip` (the PBX's own
    order: `$orderby` is unreliable, §5.6), grouped by call (see `_collect`). Needs System Owner rights (403
    otherwise)."""
    path = _CALL_LOG.format(start=iso(start), end=iso(end))
    out = CallLogPeriod()
    for skip in range(0, PERIOD_ROWS, PERIOD_PAGE):
        page = _rows(await pbx.get_json(path, {"$top": str(PERIOD_PAGE), "$skip": str(skip)}), "ReportCallLogData")
        _collect(page, out)
        if len(page) < PERIOD_PAGE:
            break
    else:
        log.warning("call log of %s..%s: more than %d rows, the rest is not read", iso(start), iso(end), PERIOD_ROWS)
    return _oldest_first(out)
