"""What the call graph needs to know about the PBX's set-up: DN types and names, trunk DIDs, inbound rule names.

Filled from `GET /callcontrol` (DN types) and XAPI `Peers` / `Trunks` / `InboundRules` (docs/3cx.md §5.3–5.5)
by the monitor, refreshed now and then; the graph only reads it (no I/O here).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

QUEUE_TYPES = frozenset({"Wqueue"})
EXTENSION_TYPES = frozenset({"Wextension"})
# DNs whose participants carry the external party's own leg when the admin monitors them (docs/3cx.md):
# never the user of an event, never deciding the direction.
CARRIER_TYPES = frozenset({"Wexternalline", "Wroutepoint"})
# DNs a call passes on its way to a user that are no queue: the IVR and the ring group (whose Call Control type
# spelling is unconfirmed, docs/3cx.md §2.3: any type not known to be something else).
_NOT_GROUPS = frozenset(
    {"Wextension", "Wqueue", "Wroutepoint", "Wspecialmenu", "Wparkextension", "Wexternalline", "None", ""}
)


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number)


def same_number(a: str, b: str) -> bool:
    """Two spellings of one phone number (+7 495…, 7495…, 8495…): equal digits or one ends the other (≥ 7)."""
    da, db = _digits(a), _digits(b)
    if not da or not db:
        return False
    if da == db:
        return True
    short, long = sorted((da, db), key=len)
    return len(short) >= 7 and long.endswith(short[-10:]) and short.endswith(long[-len(short) :])


@dataclass
class Rule:
    name: str
    data: str  # the DID or a mask (`*`, `?`, `x` wildcards)

    def matches(self, did: str) -> bool:
        if not self.data or not did:
            return False
        if any(ch in self.data for ch in "*?xX"):
            mask = re.sub(r"[xX]", "?", self.data)
            return fnmatch.fnmatchcase(_digits(did), re.sub(r"[^\d*?]", "", mask)) or fnmatch.fnmatchcase(did, mask)
        return same_number(self.data, did)


@dataclass
class Facts:
    dn_types: dict[str, str] = field(default_factory=dict)  # DN → Call Control type (Wextension, Wqueue, …)
    trunk_dids: dict[str, list[str]] = field(default_factory=dict)  # trunk DN → its DIDs
    rules: list[Rule] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # DN → its name in the directory (user, queue, group, IVR)

    def name(self, dn: str) -> str:
        """The directory's name of a DN ("" when unknown)."""
        return self.names.get(dn, "") if dn else ""

    def group(self, dn: str) -> bool:
        """Whether `dn` is a ring group or an IVR (as Call Control describes it)."""
        return self.dn_types.get(dn, "") not in _NOT_GROUPS

    def user_type(self, dn: str) -> str:
        """`ext`, `queue` or `other` (docs/webhooks.md usertype); a DN never described counts as an extension."""
        kind = self.dn_types.get(dn, "Wextension")
        if kind in EXTENSION_TYPES:
            return "ext"
        if kind in QUEUE_TYPES:
            return "queue"
        return "other"

    def carrier(self, dn: str) -> bool:
        """Whether `dn` is a trunk or route point: its participants are the external party's own legs."""
        return self.dn_types.get(dn, "") in CARRIER_TYPES

    def extensions(self) -> set[str]:
        """The DNs Call Control describes as extensions."""
        return {dn for dn, kind in self.dn_types.items() if kind in EXTENSION_TYPES}

    def trunk_did(self, trunk_dn: str) -> str:
        """The DID of a trunk that carries exactly one; otherwise unknown ("")."""
        dids = self.trunk_dids.get(trunk_dn, [])
        return dids[0] if len(dids) == 1 else ""

    def rule_name(self, did: str) -> str:
        """Name of the first inbound rule whose DID (or mask) matches; exact matches win over masks."""
        exact = [r for r in self.rules if not any(ch in r.data for ch in "*?xX") and r.matches(did)]
        if exact:
            return exact[0].name
        return next((r.name for r in self.rules if r.matches(did)), "")
