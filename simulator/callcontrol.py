"""What Call Control answers to a GET of a path (docs/3cx.md §2), shared by REST and WebSocket requests."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from .state import Listener, Pbx

RESPONSE = 4  # WebSocket event type of an answer to a request sent over the socket (§3.2)


def read(pbx: Pbx, path: str) -> tuple[int, Any]:
    """(HTTP status, JSON body) for `GET path`; the body is None unless the status is 200."""
    parts = [unquote(p) for p in path.split("?", 1)[0].strip("/").split("/")]
    if not parts or parts[0] != "callcontrol":
        return 404, None
    if len(parts) == 1:
        return 200, [pbx.dn_info(dn) for dn in pbx.dns.values() if dn.monitored]
    dn = pbx.visible(parts[1])
    if dn is None or len(parts) > 4:
        return 404, None
    if len(parts) == 2:
        return 200, pbx.dn_info(dn)
    if parts[2] == "participants":
        legs = pbx.participants[dn.number]
        if len(parts) == 3:
            return 200, [pbx.shown(p).to_json() for p in legs.values()]
        found = legs.get(int(parts[3])) if parts[3].isdigit() else None
        return (200, pbx.shown(found).to_json()) if found is not None else (404, None)
    if parts[2] == "devices":
        device = dn.device()
        if len(parts) == 3:
            return 200, [device]
        return (200, device) if parts[3] == device["device_id"] else (404, None)
    return 404, None


def answer_request(pbx: Pbx, listener: Listener, text: str) -> None:
    """A request sent over the socket (`RequestID`, `Path`, `RequestData`) gets a Response event (type 4).

    Only reads are served; a request with `RequestData` (an action) is answered 405. Garbage is ignored.
    """
    try:
        request = json.loads(text)
    except ValueError:
        return
    if not isinstance(request, dict) or not isinstance(request.get("Path"), str):
        return
    path = request["Path"]
    status, body = (405, None) if request.get("RequestData") else read(pbx, path)
    listener.push(
        RESPONSE, path, {"RequestID": request.get("RequestID"), "Path": path, "StatusCode": status, "Response": body}
    )
