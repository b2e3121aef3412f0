"""The four services' settings together, for the commands that see the whole product (check, up, demo).

Each service owns its settings class (`services/<name>/config.py`); this module only lists them and
loads them through the same loader the services use.

    product = load_product("tcxhooks.ini")
    product.monitor.pbx.url, product.dispatcher.webhooks, product.platform.store.url
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tcxhooks.analytics.config import AnalyticsSettings
from tcxhooks.dispatcher.config import DispatcherSettings
from tcxhooks.media.config import MediaSettings
from tcxhooks.monitor.config import MonitorSettings

from .platform.config import Config, Section, Settings, load_config, sections_of
from .platform.settings import PlatformSettings

SERVICES = ("monitor", "dispatcher", "media", "analytics")
SETTINGS: dict[str, type[Settings]] = {
    "monitor": MonitorSettings,
    "dispatcher": DispatcherSettings,
    "media": MediaSettings,
    "analytics": AnalyticsSettings,
}


@dataclass(frozen=True)
class Product:
    """Every service's settings, loaded from one file (`config` for its path, secrets and redaction)."""

    config: Config
    platform: PlatformSettings
    monitor: MonitorSettings
    dispatcher: DispatcherSettings
    media: MediaSettings
    analytics: AnalyticsSettings

    @property
    def path(self) -> str:
        return self.config.path


def settings_of(services: Iterable[str]) -> list[type[Settings]]:
    """The platform's settings class and those of `services`."""
    return [PlatformSettings, *(SETTINGS[name] for name in services)]


def load_product(path: str | None, env: Mapping[str, str] | None = None) -> Product:
    """Every service's settings (each one's required keys checked); raises ConfigError."""
    config = load_config(path, settings_of(SERVICES), env)
    return Product(
        config,
        config[PlatformSettings],
        config[MonitorSettings],
        config[DispatcherSettings],
        config[MediaSettings],
        config[AnalyticsSettings],
    )


def owned_sections() -> list[type[Section]]:
    """Every section's owning class, the platform's last (the order of docs/config.md)."""
    found: list[type[Section]] = []
    for settings in [*SETTINGS.values(), PlatformSettings]:
        found += [cls for cls in sections_of(settings).values() if cls.OWNED and cls not in found]
    return found
