"""The dispatcher's settings: [webhook] / [webhook:NAME] endpoints, [crm] / [crm:NAME] adapters and
[dispatcher] (docs/config.md, docs/crm.md)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from yarl import URL

from tcxhooks.platform.config import URL_PASSWORD, Missing, Section, Settings, key
from tcxhooks.platform.values import (
    base_url,
    boolean,
    choice,
    comma_list,
    duration,
    host_port,
    http_url,
    optional,
    parse_duration,
    text,
    time_zone,
    whole,
)

from .payloads import EVENT_NAMES

_SECRET_FORM = "whsec_ followed by base64 (several separated by spaces while rotating)"


def _webhook_secret(value: str) -> tuple[str, ...]:
    """One or more `whsec_<base64>` secrets (space or comma separated, for rotation)."""
    secrets = tuple(s for s in re.split(r"[\s,]+", value.strip()) if s)
    for secret in secrets:
        if not secret.startswith("whsec_"):
            raise ValueError(_SECRET_FORM)
        try:
            if not base64.b64decode(secret[len("whsec_") :], validate=True):
                raise ValueError
        except (binascii.Error, ValueError):
            raise ValueError(_SECRET_FORM) from None
    return secrets


def _endpoint_url(value: str) -> str:
    """An http(s) URL the delivery client can use, parsed as the client parses it (yarl): a port in
    1-65535 (`:99999` or `:8o8o` would fail every attempt), a host name IDNA 2008 can encode."""
    url = http_url(value)
    try:
        parsed = URL(url)
        port, host = parsed.port, parsed.raw_host
    except ValueError as exc:
        raise ValueError(f"an http:// or https:// URL with a host name and a port in 1-65535 ({exc})") from None
    if not host or not port:
        raise ValueError("an http:// or https:// URL with a host name and a port in 1-65535")
    return url


def _events_filter(value: str) -> tuple[str, ...]:
    """`*`, or names and types from EVENT_NAMES (a typo would silently starve the endpoint)."""
    events = comma_list(value) or ("*",)
    unknown = [name for name in events if name != "*" and name not in EVENT_NAMES]
    if unknown:
        raise ValueError(
            f"* or event names and types; {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} "
            f"none of: {', '.join(EVENT_NAMES)}"
        )
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


_DIDS = _numbers("DID numbers in digits (a leading + allowed)", r"\+?\d{1,20}", "74951234567")
_QUEUES = _numbers("queue numbers (digits)", r"\d{1,20}", "800")
_USERS = _numbers("extension numbers (digits)", r"\d{1,20}", "101")


def _retry_schedule(value: str) -> tuple[float, ...]:
    steps = comma_list(value)
    if not steps:
        raise ValueError("a comma list of durations such as 5s,5m,30m,2h")
    return tuple(parse_duration(step) for step in steps)


def _optional_schedule(value: str) -> tuple[float, ...]:
    return _retry_schedule(value) if value.strip() else ()


@dataclass(frozen=True)
class WebhookConfig(Section):
    """A CRM endpoint: the bare [webhook] and any number of [webhook:NAME], each with its own URL,
    format, signing secret and filters (docs/webhooks.md §5). At least one is required."""

    SECTION = "webhook"
    REPEATED = True
    ENV_KEY = "url"
    name: str = "default"
    url: str = key("", optional(_endpoint_url), "the endpoint's URL (required)", secret=URL_PASSWORD)
    format: str = key("form", choice("form", "json"), "form (the legacy module's fields) or json")
    secret: tuple[str, ...] = key(
        "",
        _webhook_secret,
        "whsec_… signing secret; several, space separated, while rotating (empty: unsigned)",
        secret=True,
    )
    events: tuple[str, ...] = key(
        "*", _events_filter, "*, or the event names and JSON types to send (docs/webhooks.md)"
    )
    dids: tuple[str, ...] = key("", _DIDS, "only calls to these DIDs")
    queues: tuple[str, ...] = key("", _QUEUES, "only events of these queues (numbers)")
    users: tuple[str, ...] = key("", _USERS, "only events of these extensions (numbers)")
    timeout: float = key("15", duration, "a delivery attempt's total timeout")
    connect_timeout: float = key("5", duration, "a delivery attempt's connect timeout")
    ca_file: str = key("", text, "a CA bundle to trust, for a CRM with a private certificate")
    concurrency: int = key("16", whole(1, 1024), "at most this many requests to the endpoint at once")
    max_backlog: int = key("100000", whole(1), "pending deliveries kept at most; newer events are refused (counted)")


def _rate(value: str) -> float:
    try:
        rate = float(value.strip())
    except ValueError:
        raise ValueError("requests per second, e.g. 2 or 0.5 (0: the CRM's documented limit)") from None
    if rate < 0:
        raise ValueError("requests per second, 0 or more (0: the CRM's documented limit)")
    return rate


def _user_map(value: str) -> tuple[str, ...]:
    """`101=17, 102 = j.doe` → ("101=17", "102=j.doe"): extension=CRM user pairs (`CrmConfig.users_by_extension`;
    Bitrix24 and amoCRM take user ids, Zammad logins or e-mails)."""
    found: list[str] = []
    for item in comma_list(value):
        extension, sep, user = (part.strip() for part in item.partition("="))
        if not sep or not re.fullmatch(r"\d{1,20}", extension) or not re.fullmatch(r"[^\s=]+", user):
            raise ValueError("extension=user pairs separated by commas, e.g. 101=17,102=23")
        found.append(f"{extension}={user}")
    return tuple(found)


CRM_TYPES = ("bitrix24", "amocrm", "zammad")


@dataclass(frozen=True)
class CrmConfig(Section):
    """A CRM adapter: an endpoint whose deliveries become the CRM's own API calls, with the same
    filters as a [webhook] (docs/crm.md). Keys marked Bitrix24, amoCRM or Zammad are that CRM's."""

    SECTION = "crm"
    REPEATED = True
    ENV_KEY = "type"
    name: str = "default"
    type: str = key("", optional(choice(*CRM_TYPES)), "bitrix24, amocrm or zammad (required)")
    events: tuple[str, ...] = key("*", _events_filter, "*, or the event names and JSON types to send")
    dids: tuple[str, ...] = key("", _DIDS, "only calls to these DIDs")
    queues: tuple[str, ...] = key("", _QUEUES, "only events of these queues (numbers)")
    users: tuple[str, ...] = key("", _USERS, "only events of these extensions (numbers)")
    url: str = key(
        "",
        optional(base_url),
        "the CRM: the Bitrix24 portal (https://company.bitrix24.ru), the amoCRM "
        "account (https://company.amocrm.ru), the Zammad server (https://zammad.example.com)",
    )
    token: str = key("", text, "amoCRM: a long-lived token; Zammad: the generic CTI token", secret=True)
    client_id: str = key("", text, "Bitrix24: the local application's client id; amoCRM (OAuth): the integration's")
    client_secret: str = key("", text, "the client secret of that application or integration", secret=True)
    oauth_url: str = key(
        "https://oauth.bitrix.info/oauth/token/",
        http_url,
        "Bitrix24: the OAuth server that refreshes the application's tokens",
    )
    webhook_url: str = key(
        "",
        optional(http_url),
        "Bitrix24: an inbound webhook URL instead of the application "
        "(https://company.bitrix24.ru/rest/1/<code>/; portals may refuse it telephony methods)",
        secret=True,
    )
    event_token: str = key(
        "", text, "Bitrix24 with webhook_url: the outgoing webhook's token (click-to-call)", secret=True
    )
    redirect_uri: str = key("", text, "amoCRM (OAuth): the integration's redirect URI")
    auth_code: str = key("", text, "amoCRM (OAuth): the authorization code, for the first tokens", secret=True)
    refresh_token: str = key("", text, "amoCRM (OAuth): a refresh token instead of the code", secret=True)
    line: str = key("", text, "Bitrix24: one LINE_NUMBER for every call (empty: the call's DID, added as a line)")
    crm_create: bool = key("false", boolean, "Bitrix24: create a lead for a caller the CRM does not know")
    add_to_chat: bool = key("true", boolean, "Bitrix24: a chat message to the agent about each call")
    source: str = key("3CX", text, "amoCRM: the calls' source and Unsorted's service code")
    notify: bool = key("true", boolean, "amoCRM: the live incoming-call notification to ringing agents")
    unsorted: bool = key("true", boolean, "amoCRM: callers no contact knows go to Unsorted")
    pipeline_id: int = key("0", whole(0), "amoCRM: the pipeline of Unsorted entries (0: the main one)")
    recording_wait: float = key("10m", duration, "amoCRM: how long an answered call waits for its recording link")
    default_user: int = key("0", whole(0), "CRM user of queue and unmapped calls and missed-call tasks (0: none)")
    user_map: tuple[str, ...] = key("", _user_map, "extension=user pairs over the CRM's own map, e.g. 101=17")
    users_refresh: float = key("10m", duration, "Bitrix24: how often the employees' extensions are read again")
    stale_after: float = key("20s", duration, "real-time steps (call cards) of older events are skipped")
    rate: float = key("0", _rate, "requests per second (0: the CRM's; Bitrix24 2 (Enterprise 5), amoCRM 6, Zammad 20)")
    burst: int = key("0", whole(0), "requests at once above the rate (0: the CRM's; Bitrix24 50, Enterprise 250)")
    missed_task: bool = key("true", boolean, "a call-back task for a missed inbound call")
    missed_task_delay: float = key("15m", duration, "the call-back task is due this long after the call")
    recording: str = key(
        "upload",
        choice("upload", "link", "none"),
        "recordings: upload the file, send the link (the CRM must reach it), or none",
    )
    transcript: bool = key("true", boolean, "the transcript into the CRM (analytics.ready)")
    summary: bool = key("true", boolean, "the summary into the CRM (analytics.ready)")
    click_to_call: bool = key(
        "false", boolean, "Bitrix24: calls agents click in the CRM are placed from their extension"
    )
    language: str = key("ru", choice("ru", "en"), "language of the texts written into the CRM")
    timezone: str = key("", time_zone, "time zone of the times sent to the CRM (empty: the host's)")
    timeout: float = key("15", duration, "a CRM request's total timeout")
    connect_timeout: float = key("5", duration, "a CRM request's connect timeout")
    ca_file: str = key("", text, "a CA bundle to trust, for a CRM with a private certificate")
    concurrency: int = key("16", whole(1, 1024), "deliveries to this CRM in flight at once")
    retry_schedule: tuple[float, ...] = key(
        "",
        _optional_schedule,
        "this CRM's waits between attempts (empty: Zammad's 1s,2s,5s,10s,30s,1m,5m,30m; the others [dispatcher]'s)",
    )
    max_backlog: int = key("100000", whole(1), "pending deliveries kept at most; newer events are refused (counted)")

    @property
    def users_by_extension(self) -> dict[str, str]:
        return {ext: user for ext, _, user in (pair.partition("=") for pair in self.user_map)}

    def missing(self) -> Iterator[Missing]:
        """What this CRM's adapter cannot run without."""
        needs: tuple[tuple[str, str], ...] = ()
        if self.type == "bitrix24" and not self.webhook_url:
            needs = (
                ("url", "the portal, e.g. https://company.bitrix24.ru (or webhook_url)"),
                ("client_id", "the local application's client id"),
                ("client_secret", "the local application's client secret"),
            )
        elif self.type == "amocrm":
            needs = (("url", "the account, e.g. https://company.amocrm.ru"),)
            if not self.token:
                needs += (
                    ("client_id", "the integration's client id (or a long-lived token)"),
                    ("client_secret", "the integration's client secret"),
                    ("redirect_uri", "the integration's redirect URI"),
                )
                if not self.refresh_token:
                    needs += (("auth_code", "an authorization code (or refresh_token)"),)
        elif self.type == "zammad":
            needs = (
                ("url", "the Zammad server, e.g. https://zammad.example.com"),
                ("token", "the token of Admin → Integrations → CTI (generic)"),
            )
        for name, expected in needs:
            if not getattr(self, name):
                yield Missing(self.title, name, expected)
        if self.type in ("bitrix24", "amocrm") and not all(u.isdigit() for u in self.users_by_extension.values()):
            yield Missing(self.title, "user_map", f"{self.type} user ids (numbers), e.g. 101=17")
        if self.type == "zammad" and "/api/v1/cti/" in self.url:
            yield Missing(self.title, "token", "the CTI token in its own key: url is the Zammad server alone")


@dataclass(frozen=True)
class DispatcherConfig(Section):
    """Delivery of the webhooks: the retry schedule, how long deliveries are kept, how replicas
    share the work."""

    SECTION = "dispatcher"
    retry_schedule: tuple[float, ...] = key(
        "5s,5m,30m,2h,5h,10h,10h", _retry_schedule, "the waits between attempts; after the last the delivery is dead"
    )
    keep_days: int = key("30", whole(1), "delivered events kept this many days")
    keep_dead_days: int = key("30", whole(1), "dead deliveries kept this many days for redelivery")
    lease_ttl: float = key("60", duration, "how long a replica holds the deliveries it claimed (then another may)")
    batch: int = key("256", whole(1, 10000), "deliveries claimed per round")
    listen: str = key(
        "",
        optional(host_port),
        "host:port of the listener for what CRMs send (install callbacks, click-to-call); empty: none",
    )
    public_url: str = key("", optional(base_url), "how CRMs reach that listener (https, behind an ingress)")
    tls_cert: str = key("", text, "the listener's certificate chain (PEM), to serve https itself")
    tls_key: str = key("", text, "the listener's private key (PEM; empty: in tls_cert)")


@dataclass(frozen=True)
class PbxZone(Section):
    """[pbx] as the dispatcher reads it (the monitor owns the section): the webhooks show their times in
    the zone of the call ids' date-time (docs/webhooks.md §2, §3)."""

    SECTION = "pbx"
    OWNED = False
    timezone: str = key("", time_zone)

    @property
    def zone(self) -> dt.tzinfo | None:
        """The zone (None: the host's)."""
        return ZoneInfo(self.timezone) if self.timezone else None


@dataclass(frozen=True)
class DispatcherSettings(Settings):
    webhooks: tuple[WebhookConfig, ...]
    crms: tuple[CrmConfig, ...]
    dispatcher: DispatcherConfig
    pbx: PbxZone

    def risks(self) -> Iterator[str]:
        for hook in self.webhooks:
            if not hook.secret:
                yield (
                    f"[{hook.title}] has no secret: its webhooks go unsigned, so the receiver cannot tell them "
                    "from forged ones"
                )
            if hook.url.startswith("http://"):
                yield f"[{hook.title}] url is plain http: the webhooks cross the network unencrypted"

    def missing(self) -> Iterator[Missing]:
        if not self.webhooks and not self.crms:
            yield Missing("webhook", "url", "the CRM endpoint URL (or a [crm:NAME] section)")
        for hook in self.webhooks:
            if not hook.url:
                yield Missing(hook.title, "url", "the CRM endpoint URL")
        taken = {hook.name for hook in self.webhooks}
        for crm in self.crms:
            if crm.name in taken:
                yield Missing(crm.title, "name", f"a name no [webhook] section has ({crm.name} is taken)")
            if not crm.type:
                yield Missing(crm.title, "type", "the CRM: " + ", ".join(CRM_TYPES))
            yield from crm.missing()
            if crm.click_to_call and not self.dispatcher.public_url:
                yield Missing("dispatcher", "public_url", f"how the CRM reaches us for click-to-call ({crm.title})")
