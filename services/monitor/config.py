"""The monitor's settings: [pbx] and [events] (docs/config.md), and the one key of [recordings] it reads."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from tcxhooks.platform.config import Missing, Section, Settings, key
from tcxhooks.platform.values import base_url, boolean, choice, duration, optional, text, time_zone


def _verify_tls(value: str) -> str:
    value = value.strip()
    if value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return "true" if boolean(value) else "false"
    if not os.path.exists(value):
        raise ValueError("true, false or the path of an existing CA bundle")
    return value


@dataclass(frozen=True)
class PbxConfig(Section):
    """The 3CX V20 PBX: where it is, the API client the monitor signs in with (3CX console:
    Integrations → API) and how the monitor follows its calls."""

    SECTION = "pbx"
    url: str = key("", optional(base_url), "3CX V20 base URL, e.g. https://pbx.example.com (required by the monitor)")
    client_id: str = key("", text, "the API client (3CX console: Integrations → API) with Call Control and XAPI access")
    client_secret: str = key("", text, "the API client's key", secret=True)
    verify_tls: str = key(
        "true", _verify_tls, "check the PBX's TLS certificate: true, false, or the path of a CA bundle"
    )
    timezone: str = key(
        "", time_zone, "IANA time zone of the PBX: the call ids' timestamps and the webhooks' times (empty: the host's)"
    )
    poll_interval: float = key("5", duration, "how often the directory and agent states are read (XAPI)")
    recordings: str = key(
        "xapi",
        choice("xapi", "folder"),
        "where media gets recordings: xapi (through the monitor) or folder (recordings_dir)",
    )
    recordings_dir: str = key("", text, "the PBX's recordings folder, with recordings = folder (media on the PBX host)")
    token_margin: float = key("30", duration, "refresh the token this long before it expires")
    ringing_grace: float = key(
        "1.5", duration, "how long a call whose legs left may still go on (transfers, queue waves)"
    )
    lease_ttl: float = key(
        "5", duration, "how long the active monitor holds the PBX; a standby takes over when it lapses"
    )
    reconcile: bool = key("true", boolean, "check every ended call against the PBX call log (needs System Owner)")
    reconcile_delay: float = key("5", duration, "wait after a call ends before reading its call-log rows")
    recover_outages: bool = key(
        "true",
        boolean,
        "after a Call Control outage or a restart, send the ended webhooks "
        "of the calls it hid, from the call log (needs System Owner)",
    )

    @property
    def reads_call_log(self) -> bool:
        """The post-call check or outage recovery is on: the API client needs System Owner rights."""
        return self.reconcile or self.recover_outages


@dataclass(frozen=True)
class EventsConfig(Section):
    """What the call events say, and which optional ones are sent (docs/webhooks.md §3)."""

    SECTION = "events"
    language: str = key("ru", choice("ru", "en"), "language of the call titles: ru or en")
    ringing_stopped: bool = key("false", boolean, "also send ringingstopped events")
    internal_calls: bool = key("false", boolean, "also report calls with no external party")


@dataclass(frozen=True)
class RecordingsSwitch(Section):
    """[recordings] as the monitor reads it (the media service owns the section): whether to hand
    ended calls over for their recordings."""

    SECTION = "recordings"
    OWNED = False
    enabled: bool = key("true", boolean)


@dataclass(frozen=True)
class MonitorSettings(Settings):
    pbx: PbxConfig
    events: EventsConfig
    recordings: RecordingsSwitch

    def risks(self) -> Iterator[str]:
        if self.pbx.url.startswith("http://"):
            yield (
                f"[pbx] url {self.pbx.url} is plain http: the client secret, the tokens and every call's "
                "numbers cross the network unencrypted"
            )
        if self.pbx.verify_tls == "false":
            yield (
                "[pbx] verify_tls = false: the PBX's certificate is not checked, so anyone on the way can pose "
                "as the PBX and take the client secret"
            )

    def missing(self) -> Iterator[Missing]:
        if not self.pbx.url:
            yield Missing("pbx", "url", "the 3CX base URL, e.g. https://pbx.example.com")
        elif not self.pbx.client_id:
            yield Missing("pbx", "client_id", "the API client id")
