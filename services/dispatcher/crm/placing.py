"""Click-to-call's PBX side as adapters see it: the monitor (the only PBX client) places the call.

place_call = monitor_place_call(app.channel("monitor"))
placed = await place_call("101", "+79161234567")    # PlacedCall(chain, pbx_call_number); CallRefused
"""

from __future__ import annotations

import grpc

from tcxhooks.v1 import monitor_service_pb2, monitor_service_pb2_grpc

from .sink import CallRefused, PlaceCall, PlacedCall

DEADLINE = 20.0  # makecall answers once the extension's device dials; a slow PBX may take seconds


def monitor_place_call(channel: grpc.aio.Channel) -> PlaceCall:
    stub = monitor_service_pb2_grpc.MonitorServiceStub(channel)

    async def place(extension: str, number: str) -> PlacedCall:
        request = monitor_service_pb2.MakeCallRequest(extension=extension, destination=number)
        try:
            reply = await stub.MakeCall(request, timeout=DEADLINE)
        except grpc.aio.AioRpcError as exc:
            raise CallRefused(f"{exc.code().name}: {exc.details()}") from None
        return PlacedCall(reply.chain, reply.pbx_call_number)

    return place
