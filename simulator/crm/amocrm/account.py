"""The amoCRM account behind the fake API: users, contacts, leads, calls, unsorted, tasks, notes.

The rules are amoCRM's documented ones (docs/crm.md, "amoCRM / Kommo"):
- a call is attached by the phone's last 10 digits to a contact; to its lead when the contact has
  exactly one active lead; if no contact has the number, the call is not added;
- a call is shown as a `call_in`/`call_out` note on that entity; a call cannot be changed later;
- an unsorted (`sip`) entry creates a lead in the "unsorted" stage and its contact, which stay out
  of contact search until a manager accepts the entry; the same entry (`source_uid`) twice is an
  error;
- amoCRM does not document that a repeated `uniq` is refused, so this fake adds the call again:
  the duplicate an adapter must never cause is visible here.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

ENTITY_PATHS = {"leads": "lead", "contacts": "contact", "companies": "company", "customers": "customer"}


def last10(phone: str) -> str:
    return re.sub(r"\D", "", phone)[-10:]


@dataclass
class User:
    id: int
    name: str
    email: str


@dataclass
class Contact:
    id: int
    name: str
    phones: list[str]
    lead_ids: list[int] = field(default_factory=list)
    accepted: bool = True  # an unsorted entry's contact is not searchable until accepted


@dataclass
class Lead:
    id: int
    name: str
    contact_ids: list[int]
    status: str = "active"  # active / unsorted / closed


@dataclass
class Call:
    id: int
    body: dict[str, Any]
    entity_type: str  # plural, as in the API paths
    entity_id: int


@dataclass
class Note:
    id: int
    entity_type: str
    entity_id: int
    note_type: str
    params: dict[str, Any]
    created_at: int
    created_by: int = 0


@dataclass
class Task:
    id: int
    entity_type: str
    entity_id: int
    text: str
    complete_till: int
    task_type_id: int
    responsible_user_id: int


@dataclass
class Unsorted:
    uid: str
    source_uid: str
    source_name: str
    metadata: dict[str, Any]
    lead_id: int
    contact_id: int
    created_at: int
    pipeline_id: int


@dataclass
class PhoneCallEvent:
    phone_number: str
    users: list[int]


class AmoAccount:
    def __init__(self, account_id: int = 28805383, subdomain: str = "tcxdemo") -> None:
        self.id = account_id
        self.subdomain = subdomain
        self.users: dict[int, User] = {}
        self.contacts: dict[int, Contact] = {}
        self.leads: dict[int, Lead] = {}
        self.calls: list[Call] = []
        self.notes: list[Note] = []
        self.tasks: list[Task] = []
        self.unsorted: list[Unsorted] = []
        self.phone_events: list[PhoneCallEvent] = []
        self._ids = itertools.count(1001)

    def next_id(self) -> int:
        return next(self._ids)

    def add_user(self, user_id: int, name: str) -> User:
        user = User(user_id, name, f"{name.split()[0].lower()}@example.com")
        self.users[user_id] = user
        return user

    def add_contact(self, name: str, phone: str, active_leads: int = 0) -> Contact:
        contact = Contact(self.next_id(), name, [phone])
        self.contacts[contact.id] = contact
        for n in range(active_leads):
            lead = Lead(self.next_id(), f"{name}: deal {n + 1}", [contact.id])
            self.leads[lead.id] = lead
            contact.lead_ids.append(lead.id)
        return contact

    def exists(self, entity_type: str, entity_id: int) -> bool:
        if entity_type == "leads":
            return entity_id in self.leads
        if entity_type == "contacts":
            return entity_id in self.contacts
        return False

    def find_contacts(self, phone: str) -> list[Contact]:
        wanted = last10(phone)
        return [
            c for c in self.contacts.values() if c.accepted and wanted and any(last10(p) == wanted for p in c.phones)
        ]

    def attach_call(self, body: dict[str, Any]) -> Call | None:
        """Adds a call to the entity its phone leads to; None when no contact has the number."""
        found = self.find_contacts(str(body["phone"]))
        if not found:
            return None
        contact = found[0]
        active = [i for i in contact.lead_ids if self.leads[i].status == "active"]
        entity_type, entity_id = ("leads", active[0]) if len(active) == 1 else ("contacts", contact.id)
        call = Call(self.next_id(), body, entity_type, entity_id)
        self.calls.append(call)
        params: dict[str, Any] = {
            k: body[k]
            for k in ("uniq", "duration", "source", "link", "phone", "call_result", "call_status")
            if k in body
        }
        note_type = "call_in" if body["direction"] == "inbound" else "call_out"
        self.add_note(entity_type, entity_id, note_type, params, int(body.get("created_by") or 0))
        return call

    def add_note(
        self, entity_type: str, entity_id: int, note_type: str, params: dict[str, Any], created_by: int = 0
    ) -> Note:
        note = Note(self.next_id(), entity_type, entity_id, note_type, params, int(time.time()), created_by)
        self.notes.append(note)
        return note

    def add_unsorted(self, item: dict[str, Any], pipeline_id: int) -> Unsorted:
        embedded = item.get("_embedded") or {}
        metadata = item["metadata"]
        contact_name = _first_name(embedded.get("contacts"), str(metadata.get("from") or "Unknown caller"))
        contact = Contact(self.next_id(), contact_name, [str(metadata.get("from") or "")], accepted=False)
        lead = Lead(
            self.next_id(),
            _first_name(embedded.get("leads"), f"Call from {metadata.get('from')}"),
            [contact.id],
            status="unsorted",
        )
        contact.lead_ids.append(lead.id)
        self.contacts[contact.id] = contact
        self.leads[lead.id] = lead
        entry = Unsorted(
            secrets.token_hex(20),
            str(item["source_uid"]),
            str(item["source_name"]),
            metadata,
            lead.id,
            contact.id,
            int(item.get("created_at") or time.time()),
            int(item.get("pipeline_id") or pipeline_id),
        )
        self.unsorted.append(entry)
        if metadata.get("is_call_event_needed", True):
            params = {k: metadata[k] for k in ("uniq", "duration", "link", "phone") if k in metadata}
            self.add_note("leads", lead.id, "call_in", {**params, "source": metadata.get("service_code")})
        return entry

    def accept(self, entry: Unsorted) -> None:
        """What a manager's "accept" does: the lead becomes active, its contact searchable."""
        self.leads[entry.lead_id].status = "active"
        self.contacts[entry.contact_id].accepted = True


def _first_name(items: Any, default: str) -> str:
    if isinstance(items, list) and items and isinstance(items[0], dict) and items[0].get("name"):
        return str(items[0]["name"])
    return default
