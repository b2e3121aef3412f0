"""What the call graph holds per 3CX call: a `Chain` of `Leg`s (one per participant), persisted as JSON.

A chain is named after the 3CX call number it began with (`callid`); after an attended transfer in which the
consultation call survives, the chain also spans that call's number (`aliases`). Legs come in kinds:
- a user leg: an extension, queue, ring group or IVR the call is offered to or talks at (the `user` of events);
- a carrier leg (`carrier`): a participant on a trunk or route point DN, i.e. the external party's own leg when
  the admin monitors the trunk (docs/3cx.md). It is never a user and never decides anything except that the
  external party is still there (or has left);
- a held leg (`held`): a user leg whose party is not known yet (makecall rings the user's own phone first, its
  party the API route point); it offers and answers nothing until its party is known;
- a ghost leg (`ghost`): another device of an extension that answered on one device; 3CX removes it a moment
  later, and until then it means nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Leg:
    key: str  # "<dn>/<participant id>"
    dn: str
    user_type: str  # ext / queue / other
    status: str
    part: dict[str, Any]
    link: int
    rang: bool = False  # its ringing was emitted
    rang_at: float = 0.0  # when it began ringing (or dialling out)
    answered_at: float = 0.0  # 0: never answered
    live: bool = True
    removed_at: float = 0.0
    ended: bool = False  # its call-ended event was emitted (answered legs)
    stopped: bool = False  # its ringing is closed (answered, or ringingstopped decided)
    stop_due: float = 0.0  # removed while ringing: ringingstopped decided then
    end_due: float = 0.0  # answered and removed: ended (transfer or not) decided then
    transfer_away: bool = False  # an attended-transfer target took its place
    trtype: str = "NotDef"
    carrier: bool = False
    held: bool = False
    ghost: bool = False
    earlier_ids: list[int] = field(default_factory=list)  # participant ids this leg had before it was re-created

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "part": dict(self.part), "earlier_ids": list(self.earlier_ids)}

    @property
    def participant_ids(self) -> list[int]:
        return [*self.earlier_ids, int(self.part["id"])]


@dataclass
class Chain:
    callid: int
    stamp: str  # yyMMddHHmmss of the first sighting
    first_seen: float
    direction: str = ""  # incoming / outgoing / internal; "" while no leg has shown a known party
    caller_id: str = ""
    trunk: str = ""
    did: str = ""
    did_name: str = ""
    link: int = 0
    offer_link: int = 0
    offer_open: bool = False  # an offer nobody has answered yet
    offer_at: float = 0.0
    missed_user: str = ""
    missed_rank: int = -1
    talker: str = ""  # key of the leg answered at `link`
    queue: str = ""
    legs: dict[str, Leg] = field(default_factory=dict)
    end_due: float = 0.0
    seq: int = 0
    last_removed: float = 0.0
    aliases: list[int] = field(default_factory=list)  # other 3CX call numbers this chain continues in
    external_left: bool = False  # a carrier leg (the external party's own, on a monitored trunk) was removed
    caller_name: str = ""  # the external party's name as the PBX shows it ("" when it shows only the number)
    group: str = ""  # the last ring group or IVR the call passed
    transfers_from: dict[str, str] = field(default_factory=dict)  # link (as text) → the DN that transferred to it

    @property
    def name(self) -> str:
        return f"{self.stamp}_{self.callid}"

    def call_id(self, link: int) -> str:
        return f"{self.name}-{link}"

    def pbx_calls(self) -> list[int]:
        """The 3CX call numbers this chain lives in (ActiveCalls lists the call while any of them exists)."""
        return [self.callid, *self.aliases]

    def live(self) -> list[Leg]:
        """The user legs still there: what keeps the call going as far as the CRM is concerned."""
        return [leg for leg in self.legs.values() if leg.live and not leg.carrier and not leg.ghost]

    def carriers_live(self) -> bool:
        return any(leg.live and leg.carrier for leg in self.legs.values())

    def known_users(self, but: Leg | None = None) -> list[Leg]:
        """The user legs whose party is known (carriers and held legs aside), `but` one."""
        return [leg for leg in self.legs.values() if leg is not but and not leg.carrier and not leg.held]

    def to_dict(self) -> dict[str, Any]:
        """What dataclasses.asdict returns (tests/monitor/test_chain_state.py checks it), written out: the
        monitor serialises every changed chain before each commit, and asdict's generic copy is slow."""
        return {
            **self.__dict__,
            "legs": {key: leg.to_dict() for key, leg in self.legs.items()},
            "aliases": list(self.aliases),
            "transfers_from": dict(self.transfers_from),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chain:
        legs = {k: Leg(**v) for k, v in data.get("legs", {}).items()}
        return cls(**{**data, "legs": legs})
