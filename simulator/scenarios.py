"""Scripted calls: every scenario is a list of steps built from the participant shapes of 3cx-v20.md §4.

`build(name, params)` returns a `Script`; `SCENARIOS` names them all; `build("random", {"seed": n})` composes a
random but well-formed call for property tests. SCENARIOS.md lists the resulting sequences.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Mapping

from .calllog import FALSIFIABLE
from .state import DEFAULT_DNS, EXTENSION, IVR, NONE_TYPE, QUEUE, ROUTEPOINT, TRUNK, TRUNK_DID, TRUNK_DN
from .steps import OrderCallback, Remove, Script, SplitRecording, Step, Upsert, Wait

NAMES = {dn.number: dn.name for dn in DEFAULT_DNS}
TYPES = {dn.number: dn.type for dn in DEFAULT_DNS}


@dataclass(frozen=True)
class Params:
    """Timings (seconds) and parties of a scenario; everything can be overridden by `/sim/play` params."""

    ring_seconds: float = 3.0
    talk_seconds: float = 8.0
    wait_seconds: float = 10.0  # time in a queue/IVR before the next thing happens
    gap: float = 0.05  # pause after every visible change, so "at once" changes keep their order
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

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> "Params":
        """Validated params; raises ValueError naming the bad key."""
        raw = dict(raw or {})
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise ValueError(f"unknown param {key!r}")
            default = getattr(cls(), key)
            try:
                if isinstance(default, bool):
                    if not isinstance(value, bool):
                        raise TypeError
                    values[key] = value
                elif isinstance(default, int):
                    values[key] = int(value)
                elif isinstance(default, str):
                    if not isinstance(value, str):
                        raise TypeError
                    values[key] = value
                elif value is None:
                    values[key] = None
                else:
                    values[key] = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"param {key!r} has a bad value {value!r}") from None
            if isinstance(values[key], (int, float)) and not isinstance(values[key], bool) and values[key] < 0:
                raise ValueError(f"param {key!r} must not be negative")
            if key in ("ring_seconds", "talk_seconds", "wait_seconds", "gap") and values[key] > 3600:
                raise ValueError(f"param {key!r} is longer than an hour")
        if values.get("falsify_log", "") not in ("", *FALSIFIABLE):
            raise ValueError(f"param 'falsify_log' must be one of {', '.join(FALSIFIABLE)}")
        if values.get("calls", 2) < 1 or values.get("calls", 2) > 100:
            raise ValueError("param 'calls' must be 1..100")
        return cls(**values)


def _party_external(number: str, name: str) -> dict[str, Any]:
    return {"party_caller_name": name, "party_dn": TRUNK_DN, "party_caller_id": number, "party_did": "",
            "party_dn_type": TRUNK}


def _party_dn(dn: str) -> dict[str, Any]:
    return {"party_caller_name": NAMES.get(dn, dn), "party_dn": dn, "party_caller_id": dn, "party_did": "",
            "party_dn_type": TYPES.get(dn, EXTENSION)}


def _by(kind: str, dn: str) -> dict[str, Any]:
    """`originated_by_*`, `referred_by_*` or `on_behalf_of_*` naming `dn` ('' = empty)."""
    key_type = "on_behalf_of_type" if kind == "on_behalf_of" else f"{kind}_type"
    if not dn:
        return {f"{kind}_dn": "", key_type: NONE_TYPE}
    return {f"{kind}_dn": dn, key_type: TYPES.get(dn, ROUTEPOINT if dn == "ROUTER" else EXTENSION)}


class Flow:
    """Builds the steps of one scenario with the §4 shapes; legs are named `<call>:<dn>` (`#<n>` for the n-th)."""

    def __init__(self, name: str, p: Params) -> None:
        self.name = name
        self.p = p
        self.steps: list[Step] = []
        self.calls: dict[str, str] = {}
        self.external: dict[str, tuple[str, str]] = {}  # call → (number, name) of its external party
        self.leg_call: dict[str, str] = {}  # leg → the call it is in now (a leg can move: attended transfer)
        self._count: dict[tuple[str, str], int] = {}

    def script(self) -> Script:
        return Script(self.name, tuple(self.steps), dict(self.calls), did=self.p.did,
                      recording_delay=self.p.recording_delay, falsify_log=self.p.falsify_log)

    def _leg(self, dn: str, call: str) -> str:
        n = self._count.get((dn, call), 0) + 1
        self._count[(dn, call)] = n
        return f"{call}:{dn}" if n == 1 else f"{call}:{dn}#{n}"

    def up(self, leg: str, dn: str, call: str, **fields: Any) -> str:
        self.steps.append(Upsert(leg, dn, call, fields))
        self.leg_call[leg] = call
        return leg

    def rm(self, *legs: str) -> None:
        self.steps.extend(Remove(leg) for leg in legs)

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self.steps.append(Wait(seconds))

    # --- call starts ------------------------------------------------------------------------
    def inbound(self, call: str = "A", caller: str | None = None) -> str:
        """The external caller's trunk leg (not monitored: no events, but it keeps the call alive)."""
        self.calls[call] = "inbound"
        self.external[call] = (caller, caller) if caller else (self.p.caller, self.p.caller_name or self.p.caller)
        return self.up(f"{call}:caller", TRUNK_DN, call, status="Connected",
                       **{**_party_external(*self.external[call]), "party_did": self.p.did})

    def outbound(self, ext: str, call: str = "A") -> str:
        """`ext` dials `callee` through the trunk: U Dialing on ext (originated_by empty, §4.6)."""
        self.calls[call] = "outbound"
        self.external[call] = (self.p.callee, "")
        leg = self.up(self._leg(ext, call), ext, call, status="Dialing", **_party_external(self.p.callee, ""),
                      **_by("originated_by", ""))
        self.up(f"{call}:callee", TRUNK_DN, call, status="Ringing", **_party_external(self.p.callee, ""))
        return leg

    # --- offering ---------------------------------------------------------------------------
    def ring(self, ext: str, call: str = "A", *, behalf: str = "", referred: str = "", origin: str = "ROUTER") -> str:
        """U Ringing on `ext`, the other party being the call's external party."""
        return self.up(self._leg(ext, call), ext, call, status="Ringing", **_party_external(*self.external[call]),
                       **_by("originated_by", behalf or origin), **_by("referred_by", referred),
                       **_by("on_behalf_of", behalf))

    def enter(self, dn: str, call: str = "A", *, referred: str = "", status: str = "Connected") -> str:
        """The caller reaches a queue / IVR / ring group DN (the queue and IVR answer: Connected)."""
        return self.up(self._leg(dn, call), dn, call, status=status, **_party_external(*self.external[call]),
                       **_by("originated_by", "ROUTER"), **_by("referred_by", referred))

    def answer(self, leg: str) -> None:
        call = self._call(leg)
        self.steps.append(Upsert(leg, self._dn(leg), call, {"status": "Connected"}))
        callee = f"{call}:callee"  # an outbound call's far end answers too (hidden trunk leg, no event)
        if self.calls.get(call) == "outbound" and callee in self.leg_call:
            self.up(callee, TRUNK_DN, call, status="Connected")

    def talk(self) -> None:
        self.wait(self.p.talk_seconds)

    def ringtime(self) -> None:
        self.wait(self.p.ring_seconds)

    @staticmethod
    def _dn(leg: str) -> str:
        return leg.split(":", 1)[1].split("#", 1)[0]

    def _call(self, leg: str) -> str:
        return self.leg_call[leg]

    # --- transfers --------------------------------------------------------------------------
    def blind_transfer(self, leg: str, target: str) -> str:
        """§4.4: U Ringing on the target (referred_by = transferring ext), then R on the transferring leg."""
        by = self._dn(leg)
        if TYPES.get(target) in (QUEUE, IVR):
            new = self.enter(target, self._call(leg), referred=by)
        else:
            new = self.ring(target, self._call(leg), referred=by, origin=by)
        self.rm(leg)
        return new

    def attended_transfer(self, leg: str, target: str, consult: str = "B") -> str:
        """§4.5: the consultation is a new call; on completion the target's leg moves into the caller's call."""
        by, call = self._dn(leg), self._call(leg)
        self.calls[consult] = "internal"
        dialing = self.up(self._leg(by, consult), by, consult, status="Dialing", **_party_dn(target),
                          **_by("originated_by", ""), **_by("referred_by", ""), **_by("on_behalf_of", ""))
        ringing = self.up(self._leg(target, consult), target, consult, status="Ringing", **_party_dn(by),
                          **_by("originated_by", by), **_by("referred_by", ""), **_by("on_behalf_of", ""))
        self.ringtime()
        self.answer(ringing)
        self.answer(dialing)
        self.wait(self.p.talk_seconds / 2)
        self.up(ringing, target, call, status="Connected", **_party_external(*self.external[call]),
                **_by("referred_by", by))
        self.rm(dialing, leg)
        return ringing

    def transfer_external(self, leg: str) -> str:
        """The far party is outside the PBX: only a hidden trunk leg appears, then R on the transferring leg."""
        call = self._call(leg)
        target = self.up(f"{call}:external", TRUNK_DN, call, status="Connected",
                         **_party_external(self.p.callee, ""), **_by("referred_by", self._dn(leg)))
        self.rm(leg)
        return target

    def end(self) -> None:
        """Removes every hidden trunk leg still open (the remote side hangs up last)."""
        opened = [s.leg for s in self.steps if isinstance(s, Upsert) and s.dn == TRUNK_DN]
        removed = {s.leg for s in self.steps if isinstance(s, Remove)}
        self.rm(*[leg for leg in dict.fromkeys(opened) if leg not in removed])


# --- the named scenarios ---------------------------------------------------------------------
def inbound_answered(f: Flow) -> None:
    f.inbound()
    leg = f.ring(f.p.ext)
    f.ringtime()
    f.answer(leg)
    f.talk()
    f.rm(leg)


def _queue_wave(f: Flow, queue: str, agents: tuple[str, ...], call: str = "A") -> list[str]:
    return [f.ring(agent, call, behalf=queue) for agent in agents]


def queue_answered(f: Flow) -> None:
    f.inbound()
    queue = f.enter("800")
    a101, a102 = _queue_wave(f, "800", ("101", "102"))
    f.ringtime()
    f.answer(a102)
    f.rm(a101, queue)
    f.talk()
    f.rm(a102)


def queue_abandoned_callback(f: Flow) -> None:
    f.inbound()
    queue = f.enter("800")
    agents = _queue_wave(f, "800", ("101", "102"))
    f.wait(f.p.wait_seconds)
    if f.p.callback:
        f.steps.append(OrderCallback("800"))
    f.rm(*agents, queue)


def queue_abandoned(f: Flow) -> None:
    f.p = replace(f.p, callback=False)
    queue_abandoned_callback(f)


def blind_transfer(f: Flow) -> None:
    f.inbound()
    first = f.ring("101")
    f.ringtime()
    f.answer(first)
    f.talk()
    second = f.blind_transfer(first, "102")
    f.ringtime()
    f.answer(second)
    f.talk()
    f.rm(second)


def attended_transfer(f: Flow) -> None:
    f.inbound()
    first = f.ring("101")
    f.ringtime()
    f.answer(first)
    f.talk()
    second = f.attended_transfer(first, "102")
    f.talk()
    f.rm(second)


def outbound_answered(f: Flow) -> None:
    leg = f.outbound(f.p.ext)
    f.ringtime()
    f.answer(leg)
    f.talk()
    f.rm(leg)


def outbound_unanswered(f: Flow) -> None:
    leg = f.outbound(f.p.ext)
    f.ringtime()
    f.rm(leg)


def ring_group(f: Flow) -> None:
    f.inbound()
    group = f.enter("900", status="Ringing")
    legs = [f.ring(ext, behalf="900") for ext in ("101", "102", "103")]
    f.ringtime()
    f.answer(legs[2])
    f.rm(legs[0], legs[1], group)
    f.talk()
    f.rm(legs[2])


def ivr_to_queue(f: Flow) -> None:
    f.inbound()
    ivr = f.enter("700")
    f.wait(f.p.wait_seconds)
    queue = f.enter("800", referred="700")
    f.rm(ivr)
    a101, a102 = _queue_wave(f, "800", ("101", "102"))
    f.ringtime()
    f.answer(a101)
    f.rm(a102, queue)
    f.talk()
    f.rm(a101)


def queue_overflow(f: Flow) -> None:
    f.inbound()
    first = f.enter("800")
    (a101,) = _queue_wave(f, "800", ("101",))
    f.ringtime()
    f.rm(a101)
    second = f.enter("801", referred="800")
    f.rm(first)
    (a103,) = _queue_wave(f, "801", ("103",))
    f.ringtime()
    f.answer(a103)
    f.rm(second)
    f.talk()
    f.rm(a103)


def agent_rejects(f: Flow) -> None:
    f.inbound()
    queue = f.enter("800")
    (a101,) = _queue_wave(f, "800", ("101",))
    f.wait(min(f.p.ring_seconds, 1.0))
    f.rm(a101)  # 101 declines; the hunt moves on
    (a102,) = _queue_wave(f, "800", ("102",))
    f.ringtime()
    f.answer(a102)
    f.rm(queue)
    f.talk()
    f.rm(a102)


def caller_hangs_up_ringing(f: Flow) -> None:
    f.inbound()
    leg = f.ring(f.p.ext)
    f.ringtime()
    f.rm(leg)


def transfer_to_external(f: Flow) -> None:
    f.inbound()
    leg = f.ring("101")
    f.ringtime()
    f.answer(leg)
    f.talk()
    f.transfer_external(leg)
    f.talk()


def transfer_to_queue(f: Flow) -> None:
    f.inbound()
    first = f.ring("101")
    f.ringtime()
    f.answer(first)
    f.talk()
    queue = f.blind_transfer(first, "800")
    a102, a103 = _queue_wave(f, "800", ("102", "103"))
    f.ringtime()
    f.answer(a102)
    f.rm(a103, queue)
    f.talk()
    f.rm(a102)


def two_transfers(f: Flow) -> None:
    f.inbound()
    leg = f.ring("101")
    f.ringtime()
    f.answer(leg)
    f.talk()
    for target in ("102", "103"):
        leg = f.blind_transfer(leg, target)
        f.ringtime()
        f.answer(leg)
        f.talk()
    f.rm(leg)


def mobile_reconnect(f: Flow) -> None:
    f.inbound()
    leg = f.ring(f.p.ext)
    f.ringtime()
    f.answer(leg)
    for _ in range(2):
        f.wait(f.p.talk_seconds / 3)
        f.steps.append(SplitRecording(leg))
        f.answer(leg)  # the re-registered device re-announces the leg: an Upsert with unchanged state
    f.wait(f.p.talk_seconds / 3)
    f.rm(leg)


def internal_call(f: Flow) -> None:
    """`ext` calls 102 (103 when `ext` is 102): an internal call, no trunk, no recording."""
    target = "103" if f.p.ext == "102" else "102"
    f.calls["A"] = "internal"
    dialing = f.up(f._leg(f.p.ext, "A"), f.p.ext, "A", status="Dialing", **_party_dn(target),
                   **_by("originated_by", ""), **_by("referred_by", ""), **_by("on_behalf_of", ""))
    ringing = f.up(f._leg(target, "A"), target, "A", status="Ringing", **_party_dn(f.p.ext),
                   **_by("originated_by", f.p.ext), **_by("referred_by", ""), **_by("on_behalf_of", ""))
    f.ringtime()
    f.answer(ringing)
    f.answer(dialing)
    f.talk()
    f.rm(ringing, dialing)


def parallel_calls(f: Flow) -> None:
    """`calls` unrelated inbound calls to 101, 102, … interleaved: all ring, then all answer, then all end."""
    exts = ["101", "102", "103", "104", "105"]
    names = [chr(ord("A") + i) if i < 26 else f"C{i}" for i in range(f.p.calls)]
    callers = [str(int(f.p.caller) + i) if f.p.caller.isdigit() else f.p.caller for i in range(f.p.calls)]
    legs = []
    for i, call in enumerate(names):
        f.inbound(call, callers[i])
        legs.append(f.ring(exts[i % len(exts)], call))
        f.wait(f.p.gap)
    f.ringtime()
    for leg in legs:
        f.answer(leg)
    f.talk()
    for leg in reversed(legs):
        f.rm(leg)


SCENARIOS: dict[str, Callable[[Flow], None]] = {
    "inbound_answered": inbound_answered,
    "queue_answered": queue_answered,
    "queue_abandoned_callback": queue_abandoned_callback,
    "queue_abandoned": queue_abandoned,
    "blind_transfer": blind_transfer,
    "attended_transfer": attended_transfer,
    "outbound_answered": outbound_answered,
    "outbound_unanswered": outbound_unanswered,
    "ring_group": ring_group,
    "ivr_to_queue": ivr_to_queue,
    "queue_overflow": queue_overflow,
    "agent_rejects": agent_rejects,
    "caller_hangs_up_ringing": caller_hangs_up_ringing,
    "transfer_to_external": transfer_to_external,
    "transfer_to_queue": transfer_to_queue,
    "two_transfers": two_transfers,
    "mobile_reconnect": mobile_reconnect,
    "parallel_calls": parallel_calls,
    "internal_call": internal_call,
}

EXT_SCENARIOS = frozenset({"inbound_answered", "caller_hangs_up_ringing", "mobile_reconnect", "outbound_answered",
                           "outbound_unanswered", "internal_call"})


def random_flow(f: Flow) -> None:
    """A random well-formed call (seeded by `seed`): entry, offers, answers, 0–2 transfers of any kind."""
    rng = random.Random(f.p.seed)
    exts = ["101", "102", "103", "104", "105"]
    if rng.random() < 0.2:
        leg = f.outbound(rng.choice(exts))
        f.wait(rng.uniform(0, f.p.ring_seconds))
        if rng.random() < 0.3:
            f.rm(leg)
            f.end()
            return
        f.answer(leg)
    else:
        f.inbound()
        answered = _random_offer(f, rng, exts)
        if answered is None:
            f.end()
            return
        leg = answered
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        f.wait(rng.uniform(0, f.p.talk_seconds))
        kind = rng.choice(("blind", "attended", "external", "queue"))
        current = Flow._dn(leg)
        others = [e for e in exts if e != current]
        if kind == "external":
            f.transfer_external(leg)
            f.wait(rng.uniform(0, f.p.talk_seconds))
            f.end()
            return
        if kind == "attended" and "B" not in f.calls:
            leg = f.attended_transfer(leg, rng.choice(others))
            continue
        target = "800" if kind == "queue" else rng.choice(others)
        new = f.blind_transfer(leg, target)
        if kind == "queue":
            agents = tuple(rng.sample([e for e in exts if e != current], 2))
            offered = _queue_wave(f, "800", agents)
            f.wait(rng.uniform(0, f.p.ring_seconds))
            winner = rng.choice(offered)
            f.answer(winner)
            f.rm(*[o for o in offered if o != winner], new)
            leg = winner
        else:
            f.wait(rng.uniform(0, f.p.ring_seconds))
            if rng.random() < 0.2:  # nobody picks up: the caller hangs up while the target rings
                f.rm(new)
                f.end()
                return
            f.answer(new)
            leg = new
    f.wait(rng.uniform(0, f.p.talk_seconds))
    f.rm(leg)
    f.end()


def _random_offer(f: Flow, rng: random.Random, exts: list[str]) -> str | None:
    """Direct extension, queue (ring-all) or ring group; returns the answering leg or None if abandoned."""
    entry = rng.choice(("ext", "queue", "group"))
    if entry == "ext":
        leg = f.ring(rng.choice(exts))
        f.wait(rng.uniform(0, f.p.ring_seconds))
        if rng.random() < 0.2:
            f.rm(leg)
            return None
        f.answer(leg)
        return leg
    dn = "800" if entry == "queue" else "900"
    holder = f.enter(dn, status="Connected" if entry == "queue" else "Ringing")
    offered = [f.ring(e, behalf=dn) for e in rng.sample(exts, rng.randint(1, 3))]
    f.wait(rng.uniform(0, f.p.ring_seconds))
    if rng.random() < 0.2:
        f.rm(*offered, holder)
        return None
    winner = rng.choice(offered)
    f.answer(winner)
    f.rm(*[o for o in offered if o != winner], holder)
    return winner


def build(name: str, raw_params: Mapping[str, Any] | None = None) -> Script:
    """The script of a named scenario (or `random`); raises KeyError/ValueError on bad input."""
    params = Params.parse(raw_params)
    if name == "random":
        flow = Flow(name, params)
        random_flow(flow)
        return flow.script()
    if name not in SCENARIOS:
        raise KeyError(name)
    flow = Flow(name, params)
    SCENARIOS[name](flow)
    flow.end()
    return flow.script()


def names() -> list[str]:
    return [*SCENARIOS, "random"]
