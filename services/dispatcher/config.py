"""The dispatcher's settings: [webhook] / [webhook:NAME] endpoints and [dispatcher] (docs/config.md)."""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Callable, Iterator

from tcxhooks.platform.config import URL_PASSWORD, Missing, Section, Settings, key
from tcxhooks.platform.values import choice, comma_list, duration, http_url, optional, parse_duration, text, whole

from .payloads import EVENT_NAMES

_SECRET_FORM = "whsec_ followed by base64 (several separated by spaces while rotating)"


def _webhook_secret(value: str) -> tuple[str, ...]:
    """One or more `whsec_<base64>` secrets (space or comma separated, for rotation)."""
    secrets = tuple(s for s in re.split(r"[\s,]+", value.strip()) if s)
    for secret in secrets:
        if not secret.startswith("whsec_"):
            raise ValueError(_SECRET_FORM)
        try:
            if not base64.b64decode(secret[len("whsec_"):], validate=True):
                raise ValueError
        except (binascii.Error, ValueError):
            raise ValueError(_SECRET_FORM) from None
    return secrets


def _events_filter(value: str) -> tuple[str, ...]:
    """`*`, or names and types from EVENT_NAMES (a typo would silently starve the endpoint)."""
    events = comma_list(value) or ("*",)
    unknown = [name for name in events if name != "*" and name not in EVENT_NAMES]
    if unknown:
        raise ValueError(f"* or event names and types; {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} "
                         f"none of: {', '.join(EVENT_NAMES)}")
    return events


def _numbers(what: str, pattern: str, example: str) -> Callable[[str], tuple[str, ...]]:
    """A comma list of PBX numbers, each matching `pattern` (filters compare them as written)."""
    def parse(value: str) -> tuple[str, ...]:
        numbers = comma_list(value)
        bad = [number for number in numbers if not re.fullmatch(pattern, number)]
        if bad:
            raise ValueError(f"{what}, e.g. {example}; {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not")
        return numbers

    return parse


def _retry_schedule(value: str) -> tuple[float, ...]:
    steps = comma_list(value)
    if not steps:
        raise ValueError("a comma list of durations such as 5s,5m,30m,2h")
    return tuple(parse_duration(step) for step in steps)


@dataclass(frozen=True)
class WebhookConfig(Section):
    """A CRM endpoint: the bare [webhook] and any number of [webhook:NAME], each with its own URL,
    format, signing secret and filters (docs/webhooks.md §5). At least one is required."""

    SECTION = "webhook"
    REPEATED = True
    ENV_KEY = "url"
    name: str = "default"
    url: str = key("", optional(http_url), "the endpoint's URL (required)", secret=URL_PASSWORD)
    format: str = key("form", choice("form", "json"), "form (the legacy module's fields) or json")
    secret: tuple[str, ...] = key("", _webhook_secret, "whsec_… signing secret; several, space separated, while "
                                  "rotating (empty: unsigned)", secret=True)
    events: tuple[str, ...] = key("*", _events_filter,
                                  "*, or the event names and JSON types to send (docs/webhooks.md)")
    dids: tuple[str, ...] = key("", _numbers("DID numbers in digits (a leading + allowed)", r"\+?\d{1,20}",
                                             "74951234567"), "only calls to these DIDs")
    queues: tuple[str, ...] = key("", _numbers("queue numbers (digits)", r"\d{1,20}", "800"),
                                  "only events of these queues (numbers)")
    users: tuple[str, ...] = key("", _numbers("extension numbers (digits)", r"\d{1,20}", "101"),
                                 "only events of these extensions (numbers)")
    timeout: float = key("15", duration, "a delivery attempt's total timeout")
    connect_timeout: float = key("5", duration, "a delivery attempt's connect timeout")
    ca_file: str = key("", text, "a CA bundle to trust, for a CRM with a private certificate")
    concurrency: int = key("16", whole(1, 1024), "at most this many requests to the endpoint at once")
    max_backlog: int = key("100000", whole(1), "pending deliveries kept at most; newer events are refused (counted)")


@dataclass(frozen=True)
class DispatcherConfig(Section):
    """Delivery of the webhooks: the retry schedule, how long deliveries are kept, how replicas
    share the work."""

    SECTION = "dispatcher"
    retry_schedule: tuple[float, ...] = key("5s,5m,30m,2h,5h,10h,10h", _retry_schedule,
                                            "the waits between attempts; after the last the delivery is dead")
    keep_days: int = key("30", whole(1), "delivered events kept this many days")
    keep_dead_days: int = key("30", whole(1), "dead deliveries kept this many days for redelivery")
    lease_ttl: float = key("60", duration, "how long a replica holds the deliveries it claimed (then another may)")
    batch: int = key("256", whole(1, 10000), "deliveries claimed per round")


@dataclass(frozen=True)
class DispatcherSettings(Settings):
    webhooks: tuple[WebhookConfig, ...]
    dispatcher: DispatcherConfig

    def missing(self) -> Iterator[Missing]:
        if not self.webhooks:
            yield Missing("webhook", "url", "the CRM endpoint URL")
        for hook in self.webhooks:
            if not hook.url:
                yield Missing(hook.title, "url", "the CRM endpoint URL")
