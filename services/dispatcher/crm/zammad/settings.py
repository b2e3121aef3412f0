"""The settings of one Zammad adapter, as its [crm:NAME] section gives them (docs/crm.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..settings import AdapterSettings
from .mapping import ZammadOptions

# Zammad times a call by when each request arrives: a retry minutes later would distort its caller
# log more than a missing step, so the schedule is short, then sparse for an outage
RETRY_SCHEDULE = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


@dataclass(frozen=True)
class ZammadSettings(AdapterSettings):
    rate: float = 20.0  # Zammad documents no limit; a proxy in front of it may have one
    burst: int = 20
    url: str = ""  # https://zammad.example.com/api/v1/cti/<token>: the token is the only credential
    retry_schedule: tuple[float, ...] = RETRY_SCHEDULE
    options: ZammadOptions = field(default_factory=ZammadOptions)

    @property
    def target(self) -> str:
        """The endpoint without its token, as operators may see it."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path.rsplit('/', 1)[0]}/***" if self.url else ""

    def secrets(self) -> list[str]:
        """The token (the URL's last path segment)."""
        token = urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1] if self.url else ""
        return [token] if token else []
