"""The config one service process would load, for tests that look at it as a whole.

config = service_config("tcxhooks.ini", "media", env={...})
config.recordings.listen, config.store.url      # media's sections, then the platform's
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tcxhooks.platform.config import Config, load_config
from tcxhooks.platform.settings import PlatformSettings
from tcxhooks.product import SETTINGS, settings_of


class ServiceConfig:
    """A service's loaded config; attributes are its sections, then the platform's, then the Config's
    (`path`, `redacted()`)."""

    def __init__(self, config: Config, service: str) -> None:
        self.config = config
        self.settings = config[SETTINGS[service]]
        self.platform = config[PlatformSettings]

    def __getattr__(self, name: str) -> Any:
        for part in (self.settings, self.platform, self.config):
            if hasattr(part, name):
                return getattr(part, name)
        raise AttributeError(name)


def service_config(path: str | None, service: str, env: Mapping[str, str] | None = None) -> ServiceConfig:
    """Loads `path` as `tcxhooks <service>` does (its required keys checked)."""
    return ServiceConfig(load_config(path, settings_of([service]), env), service)
