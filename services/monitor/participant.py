"""A Call Control participant (docs/3cx.md; 3CX V20 Call Control `Participant`) as the monitor holds it, parsed and checked.

    part = Participant.parse(json_object)   # ValueError naming the bad field

Any string is accepted as `status`: a value other than Ringing, Dialing and Connected is the call graph's to
count and ignore (the leg keeps its last known state), not a reason to drop the participant here. Text the
PBX sends that cannot be encoded (a lone UTF-16 surrogate from a `\\ud800` escape) is replaced by U+FFFD,
so it can never fail later, when an event is built from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STATUSES = ("Ringing", "Dialing", "Connected")
TRUNK_TYPE = "Wexternalline"
# `party_dn_type` values that name no party yet: the leg is not yet talking to anybody we can classify
# (e.g. the user's own phone rung first by makecall, its party the API route point).
UNKNOWN_PARTY_TYPES = frozenset({"", "None", "Wroutepoint"})


def encodable(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (valid pairs are kept)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _text(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"participant field {name!r} is not a string")


def _int(raw: dict[str, Any], name: str, required: bool = True) -> int:
    value = raw.get(name)
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"participant field {name!r} is missing or not a number")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"participant field {name!r} is not a number: {encodable(str(value))!r}") from None


@dataclass(frozen=True)
class Participant:
    id: int
    dn: str
    status: str
    callid: int
    legid: int = 0
    party_dn: str = ""
    party_dn_type: str = ""
    party_caller_id: str = ""
    party_caller_name: str = ""
    party_did: str = ""
    originated_by_dn: str = ""
    referred_by_dn: str = ""
    on_behalf_of_dn: str = ""

    @classmethod
    def parse(cls, raw: Any, dn: str = "") -> Participant:
        """From the JSON of `GET /callcontrol/{dn}/participants/{id}`; `dn` fills a missing `dn` field."""
        if not isinstance(raw, dict):
            raise ValueError("participant is not a JSON object")
        own = _text(raw, "dn") or encodable(dn)
        if not own:
            raise ValueError("participant has no dn")
        return cls(
            id=_int(raw, "id"),
            dn=own,
            status=_text(raw, "status"),
            callid=_int(raw, "callid"),
            legid=_int(raw, "legid", required=False),
            party_dn=_text(raw, "party_dn"),
            party_dn_type=_text(raw, "party_dn_type"),
            party_caller_id=_text(raw, "party_caller_id"),
            party_caller_name=_text(raw, "party_caller_name"),
            party_did=_text(raw, "party_did"),
            originated_by_dn=_text(raw, "originated_by_dn"),
            referred_by_dn=_text(raw, "referred_by_dn"),
            on_behalf_of_dn=_text(raw, "on_behalf_of_dn"),
        )

    @property
    def key(self) -> str:
        return f"{self.dn}/{self.id}"

    @property
    def known_status(self) -> bool:
        return self.status in STATUSES

    @property
    def external(self) -> bool:
        return self.party_dn_type == TRUNK_TYPE

    @property
    def party_known(self) -> bool:
        """Whether the other party is classified: an external number or a DN of the PBX (not a route point)."""
        return self.party_dn_type not in UNKNOWN_PARTY_TYPES

    def to_dict(self) -> dict[str, Any]:
        # every field is a scalar: a copy of the instance's dict is what dataclasses.asdict returns, at a
        # tenth of its cost (it runs for every Call Control change)
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Participant:
        return cls(**data)
