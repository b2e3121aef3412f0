"""Who called whom: a chain's direction, caller, trunk and DID, learned from the participants of its user legs.

The first user leg whose party is known decides (docs/3cx.md): an external party on a `Dialing` leg makes the
call outgoing, on any other leg incoming; a party inside the PBX makes it internal. Carrier legs (a monitored
trunk or route point) and legs whose party is not known yet (makecall rings the user's own phone first) never
decide: the call's direction stays open until a leg shows its party.
"""

from __future__ import annotations

from .chain import Chain
from .facts import Facts, same_number
from .participant import Participant


def external_name(p: Participant) -> str:
    """The external party's display name on `p`; "" when the PBX shows its number there instead."""
    name = p.party_caller_name.strip()
    return "" if not name or name == p.party_caller_id or same_number(name, p.party_caller_id) else name


def learn(chain: Chain, p: Participant, facts: Facts, alone: bool) -> None:
    """Direction, caller, trunk and DID from what a user leg with a known party shows.

    `alone`: no other user leg of the chain has shown its party yet (this one is the call's first).
    """
    if p.external and (not chain.direction or (chain.direction == "internal" and chain.seq == 0)):
        chain.direction = "outgoing" if p.status == "Dialing" and alone else "incoming"
        chain.caller_id, chain.trunk = p.party_caller_id, p.party_dn
        chain.caller_name = external_name(p)
    elif not chain.direction:
        chain.direction = "internal"
        chain.caller_id = p.dn if p.status == "Dialing" else p.party_dn
    elif p.external and not chain.caller_name and p.party_caller_id == chain.caller_id:
        chain.caller_name = external_name(p)  # a later leg shows the name the first did not
    if chain.direction == "incoming" and not chain.did:
        # party_did is empty on extension legs (captured); a queue/IVR leg may carry it (unverified).
        chain.did = p.party_did or facts.trunk_did(chain.trunk)
        chain.did_name = facts.rule_name(chain.did) if chain.did else ""
