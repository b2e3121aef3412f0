"""A script's participants on the PBX: applies its Upsert and Remove steps (call and leg numbering, a leg moving
to another call), with no timing and no side effects beyond the `Pbx` (the player adds those)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .state import Participant, Pbx
from .steps import Script, Upsert


class Legs:
    def __init__(self, pbx: Pbx, script: Script, on_call: Callable[[str, int], None] | None = None) -> None:
        self.pbx = pbx
        self.script = script
        self.on_call = on_call  # told (call name, call number) when a call of the script gets its number
        self.calls: dict[str, int] = {name: 0 for name in script.calls}
        self.legs: dict[str, Participant] = {}

    def callid(self, name: str) -> int:
        """The 3CX call number of the script's call `name`, allocated when the call first appears."""
        if not self.calls.get(name):
            kind = self.script.calls.get(name, "internal")
            self.calls[name] = self.pbx.new_call(kind, 3 if kind == "inbound" else 1)  # routing legs first (§2.5)
            if self.on_call is not None:
                self.on_call(name, self.calls[name])
        return self.calls[name]

    def call_name(self, callid: int) -> str:
        return next((name for name, number in self.calls.items() if number == callid), "")

    def upsert(self, step: Upsert) -> Participant:
        """Creates the leg (a new participant) or changes it; a leg shown in another call moves there."""
        callid = self.callid(step.call)
        current = self.legs.get(step.leg)
        if current is None:
            dn = self.pbx.dns[step.dn]
            current = Participant(
                id=self.pbx.new_participant_id(),
                status="",
                dn=step.dn,
                device_id=dn.device()["device_id"],
                callid=callid,
                legid=self.pbx.new_leg(callid),
            )
        elif current.callid != callid:  # attended transfer: the leg joins another call (§4.5)
            current = replace(current, callid=callid, legid=self.pbx.new_leg(callid))
        current = replace(current, **dict(step.fields))
        self.legs[step.leg] = current
        self.pbx.upsert(current)
        return current

    def remove(self, leg: str) -> Participant | None:
        """The leg ends (None when it is already gone)."""
        current = self.legs.pop(leg, None)
        if current is not None:
            self.pbx.remove(current.dn, current.id)
        return current
