"""The PBX's configuration as XAPI shows it (docs/3cx.md §5.3, §5.4): `Trunks`, `DidNumbers`, `InboundRules`,
`Peers` and `SystemStatus`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .state import (
    DID_RULE_NAME,
    EXTENSION,
    IVR,
    PARKING,
    QUEUE,
    RINGGROUP,
    ROUTEPOINT,
    SPECIALMENU,
    TRUNK,
    TRUNK_DID,
    TRUNK_DN,
)

if TYPE_CHECKING:
    from .xapi import Body, Xapi

VERSION = "20.0.10.1001"
PEER_TYPES = {
    EXTENSION: "Extension",
    QUEUE: "Queue",
    IVR: "IVR",
    RINGGROUP: "RingGroup",
    SPECIALMENU: "SpecialMenu",
    PARKING: "Parking",
    TRUNK: "ExternalLine",
    ROUTEPOINT: "RoutePoint",
}


async def trunks(x: Xapi, request: web.Request) -> Body:
    rows = [
        {
            "Id": 1,
            "Number": TRUNK_DN,
            "Name": "Main trunk",
            "DidNumbers": [TRUNK_DID],
            "ExternalNumber": TRUNK_DID,
            "Direction": "Both",
            "IsOnline": True,
            "Gateway": {"Name": "SIP provider", "Host": "sip.example.net", "Port": 5060},
        }
    ]
    return x.collection(request, "Trunks", rows, tuple(rows[0]))


async def did_numbers(x: Xapi, request: web.Request) -> Body:
    return x.collection(request, "DidNumbers", [{"Number": TRUNK_DID, "TrunkId": 1}], ("Number", "TrunkId"))


async def inbound_rules(x: Xapi, request: web.Request) -> Body:
    destination = {"To": "Extension", "Number": "101", "External": None, "Name": "Ivan Petrov"}
    rows = [
        {
            "Id": 1,
            "RuleName": DID_RULE_NAME,
            "Data": TRUNK_DID,
            "Condition": "BasedOnDID",
            "CallType": "AllCalls",
            "TrunkDN": {"Id": 1, "Number": TRUNK_DN, "Name": "Main trunk", "Type": "ExternalLine"},
            "OfficeHoursDestination": destination,
            "OutOfOfficeHoursDestination": destination,
            "HolidaysDestination": destination,
            "Hours": {"Type": "AllHours"},
        }
    ]
    return x.collection(request, "InboundRules", rows, tuple(rows[0]))


async def peers(x: Xapi, request: web.Request) -> Body:
    """Every DN with its XAPI PeerType, the way to label a DN seen in Call Control (§5.3)."""
    dns = x.pbx(request).dns.values()
    rows = [
        {"Id": i + 1, "Number": dn.number, "Name": dn.name, "Type": PEER_TYPES.get(dn.type, "None")}
        for i, dn in enumerate(dns)
    ]
    return x.collection(request, "Peers", rows, ("Id", "Number", "Name", "Type"))


async def system_status(x: Xapi, request: web.Request) -> Body:
    pbx = x.pbx(request)
    return {
        "@odata.context": "$metadata#Pbx.SystemStatus",
        "Version": VERSION,
        "FQDN": request.host,
        "CallsActive": len(pbx.live_calls()),
        "ExtensionsRegistered": sum(1 for d in pbx.dns.values() if d.type == EXTENSION),
        "RecordingQuotaReached": False,
        "RecordingStopped": False,
    }
