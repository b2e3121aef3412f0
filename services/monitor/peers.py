"""The PBX directory's names of its DNs: XAPI `Peers` (docs/3cx.md §5.3), every DN with its `Number` and `Name`.

facts.names = await peer_names(pbx)   # with the other facts, now and then: never per call event
"""

from __future__ import annotations

from .errors import PbxError
from .metrics import MALFORMED
from .pbx.client import PbxClient


async def peer_names(pbx: PbxClient) -> dict[str, str]:
    """DN number → name, for the DNs that have both; a row without them is counted and skipped."""
    body = await pbx.get_json("/xapi/v1/Peers", {"$select": "Number,Name"})
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise PbxError("XAPI Peers: the answer has no 'value' list")
    names: dict[str, str] = {}
    for row in body["value"]:
        number, name = (row.get("Number"), row.get("Name")) if isinstance(row, dict) else (None, None)
        if isinstance(number, str) and number and isinstance(name, str):
            names[number] = name
        else:
            MALFORMED.labels("xapi_row").inc()
    return names
