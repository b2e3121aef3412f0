"""Click-to-call through 3CX Call Control (docs/3cx.md §2.1, §2.4): the extension's device dials a number.

    placed = await make_call(pbx, "101", "79161234567")
    placed.callid, placed.participant_id, placed.device_id

`POST /callcontrol/{dn}/devices/{device}/makecall` is used when the DN has a registered device (it
returns the new participant); a DN without one gets the DN-level makecall, which 3CX serves by
ringing the user's phone first. The answer is a CallControlResultResponse: `finalstatus`
(Success / Failed / Rejected), `reason`, `reasontext`, `result` (the participant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import CallNotPlaced, PbxHttpError
from .client import PbxClient


@dataclass(frozen=True)
class PlacedCall:
    callid: int  # 3CX's number for the call
    participant_id: int
    device_id: str  # "" for the DN-level makecall


async def make_call(pbx: PbxClient, extension: str, destination: str, timeout: int = 30) -> PlacedCall:
    """Raises PbxHttpError 404 for an unknown DN, CallNotPlaced when 3CX refuses, PbxError when unreachable."""
    dn = quote(extension, safe="")
    devices = await pbx.get_json(f"/callcontrol/{dn}/devices")
    device = ""
    if isinstance(devices, list):
        device = next((str(d["device_id"]) for d in devices if isinstance(d, dict) and d.get("device_id")), "")
    path = f"/callcontrol/{dn}/devices/{quote(device, safe='')}/makecall" if device else f"/callcontrol/{dn}/makecall"
    try:
        answer = await pbx.post_json(path, {"destination": destination, "timeout": timeout})
    except PbxHttpError as exc:
        if exc.status == 404:
            raise
        raise CallNotPlaced(f"3CX refused makecall from {extension}: {exc.message}") from None
    return _placed(answer, extension, device)


def _placed(answer: Any, extension: str, device: str) -> PlacedCall:
    body = answer if isinstance(answer, dict) else {}
    status = str(body.get("finalstatus") or body.get("FinalStatus") or "")
    result = body.get("result") if isinstance(body.get("result"), dict) else body.get("Result")
    if status.lower() != "success" or not isinstance(result, dict):
        why = body.get("reasontext") or body.get("reason") or body.get("ReasonText") or status or "no result"
        raise CallNotPlaced(f"3CX did not place the call from {extension}: {why}")
    try:
        return PlacedCall(int(result["callid"]), int(result["id"]), device)
    except (KeyError, TypeError, ValueError):
        raise CallNotPlaced(f"3CX placed a call from {extension} but its answer names no participant") from None
