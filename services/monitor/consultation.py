"""Attended transfer in which the consultation call survives (docs/3cx.md): the caller's participant moves into
the consultation call, so the target's leg stays there (same callid) and only its party becomes the caller.
Seen from the monitored DNs, that is the one sign the caller's call goes on in another 3CX call. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from .chain import Chain, Leg
from .facts import same_number
from .participant import Participant


def taken_over(chains: Iterable[Chain], consultation: Chain, leg: Leg, p: Participant) -> Chain | None:
    """The chain whose caller the consultation call's `leg` now talks to (`p`: its new state), if it just took
    that caller over: the chain whose caller it is and whose user made the consultation. Should that user talk
    to the same number in two calls at once, the one answered last is taken."""
    if (
        consultation.direction != "internal"
        or leg.carrier
        or not p.external
        or Participant.from_dict(leg.part).external
    ):
        return None
    found: list[tuple[bool, float, Chain]] = []
    for other in chains:
        talker = other.legs.get(other.talker)
        if other is consultation or other.direction == "internal" or talker is None or talker.ended:
            continue
        same_caller = same_number(other.caller_id, p.party_caller_id) or other.caller_id == p.party_caller_id
        referred = p.referred_by_dn == talker.dn
        if same_caller and (referred or any(o.dn == talker.dn for o in consultation.legs.values())):
            found.append((referred, talker.answered_at, other))
    return max(found, key=lambda item: item[:2])[2] if found else None


def consulting(chains: Iterable[Chain], chain: Chain) -> bool:
    """Whether the user who talked last in `chain` is in an internal call that still has users: a consultation
    that may yet take `chain`'s caller over."""
    talker = chain.legs.get(chain.talker)
    if talker is None:
        return False
    return any(
        other is not chain
        and other.direction == "internal"
        and other.live()
        and any(leg.dn == talker.dn for leg in other.legs.values())
        for other in chains
    )
