"""Building blocks of the scenarios: their `Params` and the `Flow` that writes a call's steps with the participant
shapes of docs/3cx.md, including the variants a real 3CX V20 shows (docs/3cx.md; SCENARIOS.md "Variants"):

- `devices`: every extension rings on that many devices (one participant each); one answers and 3CX removes the
  others `linger` seconds later (random 0–2 s in random scenarios);
- `recreate`: mid-talk, the talking participant is removed and comes back under a new id (a mobile app that
  re-registered);
- `makecall`: an outbound call rings the user's own phone first, its party nobody yet, and dials out once the
  user picks up;
- `unknown_status`: mid-talk, the talking participant shows a status 3CX does not document, then `Connected`;
- `attended`: `caller_moves` completes an attended transfer by moving the caller's participant into the
  consultation call (which survives), instead of the target's participant into the caller's call.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .calllog import FALSIFIABLE
from .state import DEFAULT_DNS, EXTENSION, IVR, NONE_TYPE, QUEUE, ROUTEPOINT, TRUNK, TRUNK_DID, TRUNK_DN
from .steps import Later, Remove, Script, Step, Upsert, Wait

NAMES = {dn.number: dn.name for dn in DEFAULT_DNS}
TYPES = {dn.number: dn.type for dn in DEFAULT_DNS}
ATTENDED = ("target_moves", "caller_moves")
UNKNOWN_STATUS = "Held"  # not a Call Control status (docs/3cx.md): what a newer build might send
RECREATE_GAP = 0.2  # seconds between the talking participant's removal and its return under a new id
PICKUP = 0.5  # makecall: seconds until the user picks up their own phone


@dataclass(frozen=True)
class Params:
    """Timings (seconds) and parties of a scenario; everything can be overridden by `/sim/play` params."""

    ring_seconds: float = 3.0
    talk_seconds: float = 8.0
    wait_seconds: float = 10.0  # time in a queue/IVR before the next thing happens
    gap: float = 0.05  # pause between visible changes, so "at once" changes keep their order
    caller: str = "79161234567"
    caller_name: str = ""  # "" = the caller's number
    callee: str = "79031112233"  # external number dialled (outbound, transfer to external)
    did: str = TRUNK_DID
    ext: str = "101"  # the extension of the single-extension scenarios (EXT_SCENARIOS)
    recording_delay: float | None = None
    callback: bool = True
    calls: int = 2  # parallel_calls: how many calls
    seed: int = 0  # random: the seed
    falsify_log: str = ""  # ReportCallLogData gets this of call A wrong: answered / answered_by / direction
    devices: int = 1  # devices per extension (variant)
    linger: float = 0.5  # seconds the other devices keep ringing after one answered
    recreate: bool = False  # variant
    makecall: bool = False  # variant
    unknown_status: bool = False  # variant
    attended: str = ATTENDED[0]  # variant

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> Params:
        """Validated params; raises ValueError naming the bad key."""
        raw = dict(raw or {})
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise ValueError(f"unknown param {key!r}")
            values[key] = _value(key, value, getattr(cls(), key))
            if isinstance(values[key], (int, float)) and not isinstance(values[key], bool) and values[key] < 0:
                raise ValueError(f"param {key!r} must not be negative")
            if key in ("ring_seconds", "talk_seconds", "wait_seconds", "gap", "linger") and values[key] > 3600:
                raise ValueError(f"param {key!r} is longer than an hour")
        if values.get("falsify_log", "") not in ("", *FALSIFIABLE):
            raise ValueError(f"param 'falsify_log' must be one of {', '.join(FALSIFIABLE)}")
        if values.get("calls", 2) < 1 or values.get("calls", 2) > 100:
            raise ValueError("param 'calls' must be 1..100")
        if not 1 <= values.get("devices", 1) <= 5:
            raise ValueError("param 'devices' must be 1..5")
        if values.get("attended", ATTENDED[0]) not in ATTENDED:
            raise ValueError(f"param 'attended' must be one of {', '.join(ATTENDED)}")
        return cls(**values)


def _value(key: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(default, int):
            return int(value)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise TypeError
            return value
        if value is None:
            return None
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"param {key!r} has a bad value {value!r}") from None


def party_external(number: str, name: str) -> dict[str, Any]:
    return {
        "party_caller_name": name,
        "party_dn": TRUNK_DN,
        "party_caller_id": number,
        "party_did": "",
        "party_dn_type": TRUNK,
    }


def party_dn(dn: str) -> dict[str, Any]:
    return {
        "party_caller_name": NAMES.get(dn, dn),
        "party_dn": dn,
        "party_caller_id": dn,
        "party_did": "",
        "party_dn_type": TYPES.get(dn, EXTENSION),
    }


def by(kind: str, dn: str) -> dict[str, Any]:
    """`originated_by_*`, `referred_by_*` or `on_behalf_of_*` naming `dn` ('' = empty)."""
    key_type = "on_behalf_of_type" if kind == "on_behalf_of" else f"{kind}_type"
    if not dn:
        return {f"{kind}_dn": "", key_type: NONE_TYPE}
    return {f"{kind}_dn": dn, key_type: TYPES.get(dn, ROUTEPOINT if dn == "ROUTER" else EXTENSION)}


class Flow:
    """Builds the steps of one scenario; legs are named `<call>:<dn>` (`#<n>` for the n-th on that DN of that
    call, `@<d>` for the extension's device d when it has several)."""

    def __init__(self, name: str, p: Params, vary: random.Random | None = None) -> None:
        self.name = name
        self.p = p
        self.vary = vary  # random choices of the variants (random scenarios); None = fixed ones
        self.steps: list[Step] = []
        self.calls: dict[str, str] = {}
        self.external: dict[str, tuple[str, str]] = {}  # call → (number, name) of its external party
        self.leg_call: dict[str, str] = {}  # leg → the call it is in now (a leg can move: attended transfer)
        self.shown: dict[str, dict[str, Any]] = {}  # leg → every field it has shown so far
        self.devices: dict[str, list[str]] = {}  # leg → the legs of all its extension's devices (ringing)
        self.talker = ""  # the extension leg talking now
        self._count: dict[tuple[str, str], int] = {}

    def script(self) -> Script:
        return Script(
            self.name,
            tuple(self.steps),
            dict(self.calls),
            did=self.p.did,
            recording_delay=self.p.recording_delay,
            falsify_log=self.p.falsify_log,
        )

    def leg(self, dn: str, call: str) -> str:
        n = self._count.get((dn, call), 0) + 1
        self._count[(dn, call)] = n
        return f"{call}:{dn}" if n == 1 else f"{call}:{dn}#{n}"

    def up(self, leg: str, dn: str, call: str, **fields: Any) -> str:
        self.steps.append(Upsert(leg, dn, call, fields))
        self.leg_call[leg] = call
        self.shown[leg] = {**self.shown.get(leg, {}), **fields}
        return leg

    def rm(self, *legs: str) -> None:
        """The legs end; a leg still ringing on several devices ends on all of them."""
        for leg in legs:
            for device in self.devices.pop(leg, [leg]):
                self.steps.append(Remove(device))
            if leg == self.talker:
                self.talker = ""

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self.steps.append(Wait(seconds))

    # --- call starts ------------------------------------------------------------------------
    def inbound(self, call: str = "A", caller: str | None = None) -> str:
        """The external caller's trunk leg (not monitored: no events, but it keeps the call alive)."""
        self.calls[call] = "inbound"
        self.external[call] = (caller, caller) if caller else (self.p.caller, self.p.caller_name or self.p.caller)
        return self.up(
            f"{call}:caller",
            TRUNK_DN,
            call,
            status="Connected",
            **{**party_external(*self.external[call]), "party_did": self.p.did},
        )

    def outbound(self, ext: str, call: str = "A") -> str:
        """`ext` dials `callee` through the trunk: U Dialing on ext (originated_by empty, §4.6); with `makecall`
        the user's own phone rings first, and the same participant dials once the user picks up."""
        self.calls[call] = "outbound"
        self.external[call] = (self.p.callee, "")
        if self.p.makecall:
            leg = self.offer(
                ext,
                call,
                status="Ringing",
                party_caller_name="",
                party_dn="",
                party_caller_id=self.p.callee,
                party_did="",
                party_dn_type=NONE_TYPE,
                **by("originated_by", ""),
                **by("referred_by", ""),
                **by("on_behalf_of", ""),
            )
            self.wait(PICKUP)
            self.pick_up(leg)
            self.up(leg, ext, call, status="Dialing", **party_external(self.p.callee, ""))
        else:
            leg = self.up(
                self.leg(ext, call),
                ext,
                call,
                status="Dialing",
                **party_external(self.p.callee, ""),
                **by("originated_by", ""),
            )
        self.up(f"{call}:callee", TRUNK_DN, call, status="Ringing", **party_external(self.p.callee, ""))
        return leg

    # --- offering ---------------------------------------------------------------------------
    def ring(self, ext: str, call: str = "A", *, behalf: str = "", referred: str = "", origin: str = "ROUTER") -> str:
        """U Ringing on `ext`, the other party being the call's external party."""
        return self.offer(
            ext,
            call,
            status="Ringing",
            **party_external(*self.external[call]),
            **by("originated_by", behalf or origin),
            **by("referred_by", referred),
            **by("on_behalf_of", behalf),
        )

    def offer(self, dn: str, call: str, **fields: Any) -> str:
        """A new leg on `dn`; an extension with several devices rings on each (the named leg is the one that
        will answer: the last created, or a random one in random scenarios)."""
        leg = self.leg(dn, call)
        count = self.p.devices if TYPES.get(dn) == EXTENSION else 1
        others = [f"{leg}@{d}" for d in range(2, count + 1)]
        order = [*others, leg] if self.vary is None else others[:]
        if self.vary is not None:
            order.insert(self.vary.randrange(count), leg)
        for device in order:
            self.up(device, dn, call, **fields, **({} if device == leg else {"device_id": _device(dn, device)}))
        if others:
            self.devices[leg] = order
        return leg

    def enter(self, dn: str, call: str = "A", *, referred: str = "", status: str = "Connected") -> str:
        """The caller reaches a queue / IVR / ring group DN (the queue and IVR answer: Connected)."""
        return self.up(
            self.leg(dn, call),
            dn,
            call,
            status=status,
            **party_external(*self.external[call]),
            **by("originated_by", "ROUTER"),
            **by("referred_by", referred),
        )

    def pick_up(self, leg: str) -> None:
        """U Connected on `leg`; 3CX removes the extension's other devices a moment later."""
        self.up(leg, self.dn(leg), self.leg_call[leg], status="Connected")
        for device in self.devices.pop(leg, []):
            if device != leg:
                linger = self.p.linger if self.vary is None else self.vary.uniform(0, 2)
                self.steps.append(Later(linger, Remove(device)))

    def answer(self, leg: str) -> None:
        call = self.leg_call[leg]
        self.pick_up(leg)
        if TYPES.get(self.dn(leg)) == EXTENSION:
            self.talker = leg
        callee = f"{call}:callee"  # an outbound call's far end answers too (hidden trunk leg, no event)
        if self.calls.get(call) == "outbound" and callee in self.leg_call:
            self.up(callee, TRUNK_DN, call, status="Connected")

    def talk(self) -> None:
        self.talking(self.p.talk_seconds)

    def talking(self, seconds: float) -> None:
        """The talking extension talks for `seconds`; with `unknown_status` / `recreate`, mid-talk its participant
        shows an undocumented status, or is removed and re-created under a new id."""
        leg = self.talker
        if not leg or not (self.p.unknown_status or self.p.recreate):
            self.wait(seconds)
            return
        self.wait(seconds / 2)
        dn, call = self.dn(leg), self.leg_call[leg]
        if self.p.unknown_status:
            self.steps.append(Upsert(leg, dn, call, {"status": UNKNOWN_STATUS}))
            self.steps.append(Upsert(leg, dn, call, {"status": "Connected"}))
        if self.p.recreate:
            self.steps.append(Remove(leg))
            self.wait(RECREATE_GAP)
            self.steps.append(Upsert(leg, dn, call, dict(self.shown[leg])))
        self.wait(seconds / 2)

    def ringtime(self) -> None:
        self.wait(self.p.ring_seconds)

    @staticmethod
    def dn(leg: str) -> str:
        return leg.split(":", 1)[1].split("#", 1)[0].split("@", 1)[0]

    # --- transfers --------------------------------------------------------------------------
    def blind_transfer(self, leg: str, target: str) -> str:
        """§4.4: U Ringing on the target (referred_by = transferring ext), then R on the transferring leg."""
        via, call = self.dn(leg), self.leg_call[leg]
        if TYPES.get(target) in (QUEUE, IVR):
            new = self.enter(target, call, referred=via)
        else:
            new = self.ring(target, call, referred=via, origin=via)
        self.rm(leg)
        return new

    def attended_transfer(self, leg: str, target: str, consult: str = "B") -> str:
        """§4.5: the consultation is a new call; on completion the target's leg moves into the caller's call, or
        (`attended=caller_moves`) the caller's participant moves into the consultation call."""
        via, call = self.dn(leg), self.leg_call[leg]
        self.calls[consult] = "internal"
        dialing = self.up(
            self.leg(via, consult),
            via,
            consult,
            status="Dialing",
            **party_dn(target),
            **by("originated_by", ""),
            **by("referred_by", ""),
            **by("on_behalf_of", ""),
        )
        ringing = self.offer(
            target,
            consult,
            status="Ringing",
            **party_dn(via),
            **by("originated_by", via),
            **by("referred_by", ""),
            **by("on_behalf_of", ""),
        )
        self.ringtime()
        self.answer(ringing)
        self.pick_up(dialing)
        self.wait(self.p.talk_seconds / 2)
        joined = call
        if self.p.attended == "caller_moves":
            joined = consult
            self.external[consult] = self.external[call]
            outside = next((f"{call}:{side}" for side in ("caller", "callee") if f"{call}:{side}" in self.leg_call), "")
            if outside:
                self.up(outside, TRUNK_DN, consult)
        self.up(
            ringing,
            target,
            joined,
            status="Connected",
            **party_external(*self.external[call]),
            **by("referred_by", via),
        )
        self.rm(dialing, leg)
        self.talker = ringing
        return ringing

    def transfer_external(self, leg: str) -> str:
        """The far party is outside the PBX: only a hidden trunk leg appears, then R on the transferring leg."""
        call = self.leg_call[leg]
        target = self.up(
            f"{call}:external",
            TRUNK_DN,
            call,
            status="Connected",
            **party_external(self.p.callee, ""),
            **by("referred_by", self.dn(leg)),
        )
        self.rm(leg)
        return target

    def end(self) -> None:
        """Removes every hidden trunk leg still open (the remote side hangs up last)."""
        opened = [s.leg for s in self.steps if isinstance(s, Upsert) and s.dn == TRUNK_DN]
        removed = {s.leg for s in self.steps if isinstance(s, Remove)}
        self.steps.extend(Remove(leg) for leg in dict.fromkeys(opened) if leg not in removed)


def _device(dn: str, leg: str) -> str:
    return f"sip:{dn}@127.0.0.1:5062;rinstance=sim{dn}d{leg.rsplit('@', 1)[1]}"
