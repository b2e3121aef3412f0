"""Scripted calls: every scenario is a list of steps built from the participant shapes of docs/3cx.md §4.

`build(name, params)` returns a `Script`; `SCENARIOS` names them all; `build("random", {"seed": n})` composes a
random but well-formed call for property tests. SCENARIOS.md lists the resulting sequences. Every scenario plays
under any combination of the variant params (flow.py): the CRM must get the same webhooks.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from .flow import Flow, Params, by, party_dn
from .steps import OrderCallback, Script, SplitRecording


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
    dialing = f.up(
        f.leg(f.p.ext, "A"),
        f.p.ext,
        "A",
        status="Dialing",
        **party_dn(target),
        **by("originated_by", ""),
        **by("referred_by", ""),
        **by("on_behalf_of", ""),
    )
    ringing = f.offer(
        target,
        "A",
        status="Ringing",
        **party_dn(f.p.ext),
        **by("originated_by", f.p.ext),
        **by("referred_by", ""),
        **by("on_behalf_of", ""),
    )
    f.ringtime()
    f.answer(ringing)
    f.pick_up(dialing)
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

EXT_SCENARIOS = frozenset(
    {
        "inbound_answered",
        "caller_hangs_up_ringing",
        "mobile_reconnect",
        "outbound_answered",
        "outbound_unanswered",
        "internal_call",
    }
)


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
        f.talking(rng.uniform(0, f.p.talk_seconds))
        kind = rng.choice(("blind", "attended", "external", "queue"))
        current = Flow.dn(leg)
        others = [e for e in exts if e != current]
        if kind == "external":
            f.transfer_external(leg)
            # The outside party talks longer than a monitor's grace: a shorter talk shows the monitor nothing
            # that tells a transfer from a hang-up (the PBX no longer lists the call when it looks).
            f.wait(2 + rng.uniform(0, f.p.talk_seconds))
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
    f.talking(rng.uniform(0, f.p.talk_seconds))
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
        flow = Flow(name, params, vary=random.Random(f"{params.seed}/variants"))
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
