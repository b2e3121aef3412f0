"""Anonymized trace records for `tcxhooks capture --anonymize` (docs/3cx.md §8).

    anonymizer = Anonymizer()
    anonymizer.learn_names(["Ivan Petrov"])      # optional: names known up front (the extension directory)
    clean = anonymizer.record(record)            # a new record; the same original always gets the same fake

Phone numbers, names, e-mail addresses, host names and device contacts are replaced consistently (the same
number always becomes the same fake of the same length, so a sequence stays readable and replays the same);
DN numbers, DN types, statuses, ids and times stay. Fields are judged by their key where the monitor knows
them (Call Control participants, the XAPI rows it reads, its own stored calls); every other string is
scrubbed of e-mail addresses, URLs' hosts, runs of five or more digits that are not DN numbers, and every
name met so far. Free text that may quote anybody (call-log reasons, transcripts) is dropped.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from typing import Any

# Keys whose value is a phone number (or a list of them, or a map to them).
NUMBER_KEYS = frozenset(
    {
        "party_caller_id",
        "party_did",
        "caller_id",
        "callerid",
        "did",
        "data",
        "trunk_dids",
        "Did",
        "DidNumbers",
        "Data",
        "ExternalNumber",
        "Mobile",
        "OutboundCallerID",
        "CallerId",
        "SourceCallerId",
        "DestinationCallerId",
        "FromCallerNumber",
        "ToCallerNumber",
        "FromDidNumber",
        "ToDidNumber",
        "TrunkNumberCallerId",
    }
)
# Keys whose value is a name (a person's, a queue's, a rule's…); a value of digits alone is a number.
NAME_KEYS = frozenset(
    {
        "party_caller_name",
        "caller_name",
        "did_name",
        "name",
        "Name",
        "FirstName",
        "LastName",
        "DisplayName",
        "CustomName",
        "RuleName",
        "TrunkName",
        "SourceDisplayName",
        "DestinationDisplayName",
        "FromDisplayName",
        "ToDisplayName",
        "ActionDnDisplayName",
        "Tags",
    }
)
# "<number> <name>" (ActiveCalls, the login report).
MIXED_KEYS = frozenset({"Caller", "Callee", "Agent"})
# Values that are DN numbers: kept, and learnt so the digit scrubber keeps them elsewhere too.
DN_KEYS = frozenset(
    {
        "dn",
        "party_dn",
        "originated_by_dn",
        "referred_by_dn",
        "on_behalf_of_dn",
        "trunk",
        "queue",
        "missed_user",
        "Number",
        "SourceDn",
        "DestinationDn",
        "ActionDnDn",
        "FromDn",
        "ToDn",
        "QueueNo",
        "AgentNo",
        "QueueDnNumber",
        "TrunkNumber",
        "Dn",
    }
)
HOST_KEYS = frozenset({"FQDN", "Host"})
DEVICE_KEYS = frozenset({"device_id"})
DROP_KEYS = frozenset({"Reason", "Transcription", "TranscriptionResult", "Summary", "CustomMessage"})
# Ids, times and enumerations (statuses, types, settings): kept as they are.
KEEP_KEYS = frozenset(
    {
        "t",
        "kind",
        "stamp",
        "entity",
        "key",
        "talker",
        "Id",
        "CallId",
        "CallHistoryId",
        "MainCallHistoryId",
        "CdrId",
        "SegmentId",
        "RecordingId",
        "FromIdParticipant",
        "ToIdParticipant",
        "RefParticipantId",
        "SrcRecId",
        "DstRecId",
        "status",
        "direction",
        "trtype",
        "outcome",
        "timezone",
        "language",
        "Direction",
        "Status",
        "CallType",
        "QueueStatus",
        "CurrentProfileName",
        "Condition",
        "PollingStrategy",
    }
)

_SCRUB = re.compile(
    r"""
    (?P<time>\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)
  | (?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)
  | (?P<url>(?<=://)[^/\s:'"?#]+)
  | (?P<number>\+?(?<!\d)\d{5,}(?!\d))
""",
    re.VERBOSE,
)
_DIGITS = re.compile(r"\+?\d+")
_MIXED = re.compile(r"^\s*(\+?\d+)\s*(.*)$", re.S)
_WORD = re.compile(r"[^\W\d_]{3,}")


class Anonymizer:
    def __init__(self) -> None:
        self.dns: set[str] = set()
        self._numbers: dict[str, str] = {}
        self._names: dict[str, str] = {}
        self._words: dict[str, str] = {}
        self._emails: dict[str, str] = {}
        self._hosts: dict[str, str] = {}
        self._devices: dict[str, str] = {}
        self._counter = itertools.count(1)
        self._known: re.Pattern[str] | None = None

    # --- replacements -------------------------------------------------------------------------
    def number(self, text: str) -> str:
        digits = text.lstrip("+")
        if not digits.isdigit() or digits in self.dns:
            return text
        fake = self._numbers.get(digits)
        if fake is None:
            fake = self._numbers[digits] = self._fake_number(len(digits))
        return text[: len(text) - len(digits)] + fake

    def _fake_number(self, length: int) -> str:
        """A new number of `length` digits (longer only when they run out), never a DN or an earlier fake."""
        taken = set(self._numbers.values())
        while True:
            count = str(next(self._counter))
            prefix = "555" if length >= 7 else "9"
            fake = prefix + count.zfill(length - len(prefix))
            if fake not in self.dns and fake not in taken:
                return fake

    def name(self, text: str) -> str:
        if not text.strip():
            return text
        if _DIGITS.fullmatch(text.strip()):
            return self.number(text.strip())
        fake = self._names.get(text)
        if fake is None:
            fake = self._names[text] = f"Name {next(self._counter)}"
            for word in _WORD.findall(text):
                self._words.setdefault(word, f"W{next(self._counter)}")
            self._known = None
        return fake

    def learn_names(self, names: list[str]) -> None:
        """Names to remove from free text before they appear in a name field (e.g. the extension directory)."""
        for text in names:
            self.name(text)

    def _email(self, text: str) -> str:
        return self._emails.setdefault(text.lower(), f"user{next(self._counter)}@example.invalid")

    def _host(self, text: str) -> str:
        return self._hosts.setdefault(text.lower(), f"host{next(self._counter)}.example.invalid")

    def _device(self, text: str) -> str:
        fake = self._devices.get(text)
        if fake is None:
            user = text.split(":", 1)[-1].split("@", 1)[0]
            user = user if user in self.dns else "device"
            fake = self._devices[text] = f"sip:{user}@{self._host(text)}"
        return fake

    def scrub(self, text: str) -> str:
        """Free text: e-mails, hosts of URLs, long digit runs that are no DN, and every name met so far."""

        def replace(match: re.Match[str]) -> str:
            kind = match.lastgroup
            if kind == "email":
                return self._email(match.group())
            if kind == "url":
                return self._host(match.group())
            if kind == "number":
                return self.number(match.group())
            return match.group()

        text = _SCRUB.sub(replace, text)
        if self._words:
            if self._known is None:
                names = sorted([*self._names, *self._words], key=len, reverse=True)
                self._known = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in names) + r")\b")
            text = self._known.sub(lambda m: self._names.get(m.group()) or self._words[m.group()], text)
        return text

    # --- records --------------------------------------------------------------------------------
    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        self._learn_dns(record)
        return {
            key: self._frame(value) if key == "text" and isinstance(value, str) else self._value(key, value)
            for key, value in record.items()
        }

    def _frame(self, text: str) -> str:
        """A WebSocket frame's text: its JSON anonymized like any record (free text if it is not JSON)."""
        try:
            frame = json.loads(text)
        except ValueError:
            return self.scrub(text)
        self._learn_dns(frame)
        return json.dumps(self._value("", frame), separators=(",", ":"))

    def _learn_dns(self, value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                if name == "dn_types" and isinstance(item, dict):
                    self.dns.update(str(dn) for dn in item)
                self._learn_dns(item, name)
        elif isinstance(value, list):
            for item in value:
                self._learn_dns(item, key)
        elif isinstance(value, str) and key in DN_KEYS and value.isdigit():
            self.dns.add(value)
        elif isinstance(value, str) and key == "entity":
            self.dns.update(part for part in value.split("/")[2:3] if part)

    def _value(self, key: str, value: Any) -> Any:
        if isinstance(value, dict):
            if key == "names":  # the header's directory: DN → a person's, queue's or group's name
                return {dn: self.name(str(item)) for dn, item in value.items()}
            return {name: self._value(name, item) for name, item in value.items()}
        if isinstance(value, list):
            return [self._value(key, item) for item in value]
        if not isinstance(value, str):
            return value
        if key.endswith(("_type", "Type")):
            return value
        return _RULES.get(key, Anonymizer.scrub)(self, value)

    def _mixed(self, text: str) -> str:
        match = _MIXED.match(text)
        if match is None:
            return self.name(text)
        number, rest = match.groups()
        return self.number(number) + (" " + self.name(rest) if rest else "")

    def _dn(self, text: str) -> str:
        return text if not text or text.isdigit() or text in self.dns else self.name(text)

    def _keep(self, text: str) -> str:
        return text

    def _drop(self, text: str) -> str:
        return ""

    def _number_field(self, text: str) -> str:
        return self.number(text) if _DIGITS.fullmatch(text) else self.scrub(text)


_RULES: dict[str, Callable[[Anonymizer, str], str]] = {
    **{key: Anonymizer._number_field for key in NUMBER_KEYS},
    **{key: Anonymizer.name for key in NAME_KEYS},
    **{key: Anonymizer._mixed for key in MIXED_KEYS},
    **{key: Anonymizer._dn for key in DN_KEYS},
    **{key: Anonymizer._host for key in HOST_KEYS},
    **{key: Anonymizer._device for key in DEVICE_KEYS},
    **{key: Anonymizer._drop for key in DROP_KEYS},
    **{key: Anonymizer._keep for key in KEEP_KEYS},
}
