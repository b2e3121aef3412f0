"""Scenario 1 end to end over the real protocol: WS envelope, GET of each entity, Remove, recording."""

from __future__ import annotations

import io
import wave

from .conftest import Sim
from .watch import watch


async def test_inbound_answered_sequence_and_recording(sim: Sim) -> None:
    async with sim.ws() as ws:
        number = await sim.play("inbound_answered", talk_seconds=0.6)
        seen = await watch(sim, ws, until_removed=1)
    assert number == 698
    assert [(e["event_type"], s.get("status")) for e, s in seen] == [(0, "Ringing"), (0, "Connected"), (1, None)]
    ringing = seen[0][1]
    assert ringing == {
        "id": ringing["id"],
        "status": "Ringing",
        "dn": "101",
        "party_caller_name": "79161234567",
        "party_dn": "10000",
        "party_caller_id": "79161234567",
        "party_did": "",
        "device_id": "sip:101@127.0.0.1:5062;rinstance=sim101",
        "party_dn_type": "Wexternalline",
        "direct_control": False,
        "originated_by_dn": "ROUTER",
        "originated_by_type": "Wroutepoint",
        "referred_by_dn": "",
        "referred_by_type": "None",
        "on_behalf_of_dn": "",
        "on_behalf_of_type": "None",
        "callid": 698,
        "legid": 4,
    }
    assert seen[0][0]["entity"] == f"/callcontrol/101/participants/{ringing['id']}"
    await sim.get(seen[0][0]["entity"], status=404)
    row = await sim.wait_done(number)
    assert row["error"] == "" and len(row["recordings"]) == 1
    listed = (await sim.get("/xapi/v1/Recordings", **{"$filter": f"Id eq {row['recordings'][0]}"}))["value"]
    assert len(listed) == 1
    rec = listed[0]
    assert (rec["FromDn"], rec["FromCallerNumber"], rec["ToDn"], rec["ToIdParticipant"], rec["CallType"]) == (
        "10000",
        "79161234567",
        "101",
        ringing["id"],
        "InboundExternal",
    )
    assert rec["RecordingUrl"].startswith("101/[79161234567]_79161234567-101_") and rec["RecordingUrl"].endswith(
        f"({rec['Id']}).wav"
    )
    audio = await sim.get(f"/xapi/v1/Recordings/Pbx.DownloadRecording(recId={rec['Id']})")
    with wave.open(io.BytesIO(audio)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        seconds = wav.getnframes() / 8000
    assert 0.6 <= seconds < 1.5
