"""Property tests on the simulator's random calls: legs end exactly once, link rules, order, resync, restart."""
from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from tcxhooks.simulator.scenarios import build

from .replay import replay
from .synth import lines_of

PARAMS = {"ring_seconds": 2, "talk_seconds": 5, "wait_seconds": 2}
seeds = st.integers(min_value=0, max_value=10**6)
SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_lines(seed: int) -> list[dict[str, Any]]:
    return lines_of(build("random", {**PARAMS, "seed": seed}))


def link(body: dict[str, str]) -> int:
    return int(body["id"].rsplit("-", 1)[1])


def offer_link(body: dict[str, str]) -> int:
    """The link a leg rang on: an answer at link 1 closes a ringing of link 0, later links are the same."""
    n = link(body)
    return 0 if body["event"].startswith("hangup") and n == 1 else n


def check_call(bodies: list[list[tuple[str, str]]]) -> None:
    events = [dict(b) for b in bodies]
    kinds = [e["event"] for e in events]
    assert kinds[-1] in ("incoming", "outgoing"), kinds  # a call always ends with an ended event
    answered_links: list[int] = []
    ended_ok = Counter()
    missed = []
    for e in events:
        kind = e["event"]
        if kind == "ringing":
            # 0 before any answer; a transfer target already rings on the next link.
            assert link(e) == (answered_links[-1] + 1 if answered_links else 0), kinds
        elif kind in ("hangupincoming", "hangupoutgoing"):
            assert link(e) == (answered_links[-1] + 1 if answered_links else 1), kinds
            answered_links.append(link(e))
        elif kind in ("incoming", "outgoing"):
            if e["finishtype"] == "Ok":
                assert link(e) in answered_links, kinds
                ended_ok[e["id"]] += 1
            else:
                missed.append(link(e))
    # Every answered leg ends exactly once; a missed end only where nobody answered, at most once.
    assert all(ended_ok[f"{events[0]['id'].rsplit('-', 1)[0]}-{n}"] == 1 for n in answered_links), kinds
    assert len(missed) <= 1 and not set(missed) & set(answered_links), kinds
    # Every extension that rang stops exactly once: answered, ringingstopped, or the call was missed there.
    rang = Counter((e["user"], link(e)) for e in events if e["event"] == "ringing" and e["usertype"] == "ext")
    closed = Counter((e["user"], offer_link(e)) for e in events
                     if e["event"] == "ringingstopped" or (e["event"].startswith("hangup") and e["trtype"] != "Accomp"))
    for key, count in rang.items():
        if key[1] in missed:
            assert closed[key] <= count, (key, kinds)
        else:
            assert closed[key] == count, (key, kinds)
    stops = {(e["user"], link(e)) for e in events if e["event"] == "ringingstopped"}
    assert not stops - set(rang), kinds  # nothing stops ringing that never rang (an outbound answer never rang)


@SETTINGS
@given(seeds)
def test_random_calls_follow_the_rules(seed: int) -> None:
    bodies = replay(random_lines(seed))
    assert 1 <= len(bodies) <= 2  # call A, plus the consultation when internal calls were reported (they are not)
    for call in bodies.values():
        check_call(call)


@settings(max_examples=150, deadline=None)
@given(seeds, st.data())
def test_a_lost_message_and_resync_change_nothing(seed: int, data: st.DataObject) -> None:
    lines = random_lines(seed)
    index = data.draw(st.integers(min_value=1, max_value=len(lines) - 1))
    assert replay(lines, drop=index) == replay(lines)


@settings(max_examples=150, deadline=None)
@given(seeds, st.data())
def test_a_restart_anywhere_changes_nothing(seed: int, data: st.DataObject) -> None:
    lines = random_lines(seed)
    index = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
    assert replay(lines, restart=index) == replay(lines)
