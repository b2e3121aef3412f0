"""The call state the monitor persists before each publish: `to_dict` is written out by hand for speed, so it
must stay what `dataclasses.asdict` gives, a copy, and read back to the same chain."""

from __future__ import annotations

import dataclasses
import json

from tcxhooks.monitor.chain import Chain, Leg
from tcxhooks.monitor.participant import Participant


def _participant() -> Participant:
    return Participant(
        7, "101", "Connected", 42, 3, "+74951234567", "Trunk", "+74951234567", "Ivan", "8800", "1", "2", "3"
    )


def _chain() -> Chain:
    part = _participant().to_dict()
    leg = Leg(
        "101/7",
        "101",
        "ext",
        "Connected",
        part,
        2,
        True,
        1.5,
        2.5,
        False,
        3.5,
        True,
        True,
        4.5,
        5.5,
        True,
        "Blind",
        False,
        False,
        False,
        [5, 6],
    )
    carrier = Leg("10000/8", "10000", "other", "Connected", {**part, "id": 8}, 0, carrier=True)
    values: dict[str, object] = {}
    for field in dataclasses.fields(Chain):
        if field.name not in ("legs", "aliases", "transfers_from"):
            values[field.name] = {int: 9, float: 9.5, str: "x", bool: True}[
                type(getattr(Chain(1, "s", 0.0), field.name))
            ]
    values.update(callid=42, stamp="261207101112", first_seen=1.25)
    return Chain(**values, legs={leg.key: leg, carrier.key: carrier}, aliases=[43], transfers_from={"2": "102"})  # type: ignore[arg-type]


def test_a_chain_is_saved_as_asdict_would_and_read_back_the_same() -> None:
    chain = _chain()
    saved = chain.to_dict()
    assert saved == dataclasses.asdict(chain)
    assert Chain.from_dict(json.loads(json.dumps(saved))) == chain


def test_what_is_saved_is_a_copy() -> None:
    chain = _chain()
    saved = chain.to_dict()
    saved["aliases"].append(99)
    saved["transfers_from"]["3"] = "103"
    saved["legs"]["101/7"]["part"]["status"] = "Dialing"
    saved["legs"]["101/7"]["earlier_ids"].append(99)
    assert chain == _chain()


def test_a_participant_is_saved_as_asdict_would() -> None:
    participant = _participant()
    assert participant.to_dict() == dataclasses.asdict(participant)
    assert Participant.from_dict(participant.to_dict()) == participant
