"""The fake Bitrix24 portal's data: employees, CRM entities, the app's lines, registered and finished
calls, activities, files, transcripts, comments, event handlers, OAuth tokens."""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

ENTITY_TYPE_IDS = {"LEAD": 1, "DEAL": 2, "CONTACT": 3, "COMPANY": 4}  # crm data types (ownerTypeId)
REGISTER_REUSE_SECONDS = 30 * 60  # a repeated register within 30 minutes returns the same CALL_ID


class RestError(Exception):
    """An error answer: HTTP `status`, body `{"error": code, "error_description": description}`."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.status = status
        self.code = code
        self.description = description


@dataclass(frozen=True)
class Page:
    """The answer of a list method: one page of `result`, the `total` and the `next` offset."""

    result: list[Any]
    total: int
    next: int | None = None

    @classmethod
    def of(cls, rows: list[Any], start: Any, size: int = 50) -> Page:
        try:
            first = max(0, int(start or 0))
        except (TypeError, ValueError):
            first = 0
        more = first + size < len(rows)
        return cls(rows[first : first + size], len(rows), first + size if more else None)


def core(description: str) -> RestError:
    return RestError(400, "ERROR_CORE", description)


@dataclass
class Employee:
    id: int
    name: str
    last_name: str
    phone_inner: str = ""
    active: bool = True
    user_type: str = "employee"

    def to_json(self) -> dict[str, Any]:
        return {
            "ID": str(self.id),
            "ACTIVE": self.active,
            "NAME": self.name,
            "LAST_NAME": self.last_name,
            "UF_PHONE_INNER": self.phone_inner,
            "USER_TYPE": self.user_type,
        }


@dataclass
class Entity:
    """A CRM contact, company or lead with its phone numbers."""

    type: str  # CONTACT / COMPANY / LEAD
    id: int
    name: str
    phones: tuple[str, ...]
    assigned_by: int


@dataclass
class Registration:
    """A call registered with telephony.externalCall.register (or by a click-to-call)."""

    call_id: str
    user_id: int
    phone: str
    type: int
    line: str
    external_id: str
    start: str  # CALL_START_DATE as given (ISO-8601) or the registration time
    registered_at: float
    entity: Entity | None
    created: list[dict[str, Any]] = field(default_factory=list)  # CRM_CREATED_ENTITIES
    shown: set[int] = field(default_factory=set)  # users whose card is open
    finished: int = 0  # the statistics row id once finished


@dataclass
class Portal:
    """All the state of one fake portal. Single-threaded (asyncio): no locks."""

    domain: str = "tcxhooks-demo.bitrix24.ru"
    member_id: str = field(default_factory=lambda: secrets.token_hex(16))
    client_id: str = "local.6650e1f2a3b4c5.12345678"
    client_secret: str = "fake-bitrix24-client-secret"
    application_token: str = field(default_factory=lambda: secrets.token_hex(16))
    token_ttl: float = 3600.0
    webhook_user: int = 1
    webhook_code: str = "fakewebhookcode"
    webhook_telephony: bool = False  # current portals refuse telephony methods to inbound webhooks
    public_links_only: bool = True  # cloud portals refuse RECORD_URL links to private addresses
    employees: list[Employee] = field(
        default_factory=lambda: [
            Employee(1, "Admin", "Portal"),
            Employee(11, "Ivan", "Petrov", "101"),
            Employee(12, "Maria", "Sidorova", "102"),
            Employee(13, "Oleg", "Smirnov", "103"),
            Employee(14, "Anna", "Kuznetsova", "104"),
            Employee(19, "Former", "Agent", "109", active=False),
        ]
    )
    entities: list[Entity] = field(
        default_factory=lambda: [
            Entity("CONTACT", 797, "Sergey Ivanov", ("+79161234567",), 11),
            Entity("COMPANY", 31, "Romashka LLC", ("+74957654321",), 12),
        ]
    )
    lines: dict[str, dict[str, str]] = field(default_factory=dict)  # NUMBER → {NUMBER, NAME, CRM_AUTO_CREATE}
    registrations: dict[str, Registration] = field(default_factory=dict)
    statistics: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    files: dict[int, dict[str, Any]] = field(default_factory=dict)
    transcripts: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    handlers: list[dict[str, str]] = field(default_factory=list)  # event.bind: {event, handler}
    access_tokens: dict[str, float] = field(default_factory=dict)  # token → expiry (unix)
    refresh_tokens: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7000))

    def next_id(self) -> int:
        return next(self._ids)

    # --- OAuth -------------------------------------------------------------------------------
    def issue_tokens(self) -> dict[str, Any]:
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        self.access_tokens[access] = time.time() + self.token_ttl
        self.refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": int(self.token_ttl),
            "domain": self.domain,
            "member_id": self.member_id,
            "scope": "crm,telephony,user",
            "status": "L",
            "application_token": self.application_token,
        }

    def refresh(self, refresh_token: str) -> dict[str, Any] | None:
        """A new token pair for a live refresh token (which is spent); None when unknown."""
        if refresh_token not in self.refresh_tokens:
            return None
        self.refresh_tokens.discard(refresh_token)
        return self.issue_tokens()

    def token_state(self, token: str) -> str:
        """valid / expired / unknown"""
        expiry = self.access_tokens.get(token)
        if expiry is None:
            return "unknown"
        return "valid" if time.time() < expiry else "expired"

    def expire_tokens(self) -> int:
        for token in self.access_tokens:
            self.access_tokens[token] = 0.0
        return len(self.access_tokens)

    # --- people and entities ----------------------------------------------------------------------
    def employee(self, user_id: Any = None, phone_inner: Any = None) -> Employee:
        """The active employee by id or internal number; the documented error otherwise."""
        if user_id in (None, "") and phone_inner in (None, ""):
            raise core("USER_ID or USER_PHONE_INNER should be set")
        for employee in self.employees:
            if (user_id not in (None, "") and str(employee.id) == str(user_id)) or (
                user_id in (None, "") and employee.phone_inner == str(phone_inner)
            ):
                if employee.active:
                    return employee
                break
        raise core("User is not found or is not active")

    def entity_by_phone(self, phone: str) -> Entity | None:
        wanted = "".join(ch for ch in phone if ch.isdigit())[-10:]
        for entity in self.entities:
            if any("".join(ch for ch in p if ch.isdigit())[-10:] == wanted for p in entity.phones):
                return entity
        return None

    def entity(self, entity_type: str, entity_id: Any) -> Entity | None:
        return next((e for e in self.entities if e.type == entity_type and str(e.id) == str(entity_id)), None)

    def new_lead(self, phone: str, user_id: int) -> Entity:
        lead = Entity("LEAD", self.next_id(), f"Lead from {phone}", (phone,), user_id)
        self.entities.append(lead)
        return lead

    def registration(self, call_id: Any) -> Registration | None:
        return self.registrations.get(str(call_id)) if isinstance(call_id, str) else None

    def statistic(self, call_id: str) -> dict[str, Any] | None:
        return next((row for row in self.statistics if row["CALL_ID"] == call_id), None)
