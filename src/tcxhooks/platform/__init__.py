"""Shared plumbing of the four services: config, logging, metrics, gRPC, health, store, runtime."""

from .config import Config, ConfigError, Missing, Section, Settings, key, load_config
from .grpc import create_server, open_channel
from .health import Health
from .logging import setup_logging
from .runtime import App, run, serve
from .settings import PlatformSettings
from .store import Migration, Store, StoreError, open_store
from .values import parse_duration

__all__ = [
    "App",
    "Config",
    "ConfigError",
    "Health",
    "Migration",
    "Missing",
    "PlatformSettings",
    "Section",
    "Settings",
    "Store",
    "StoreError",
    "create_server",
    "key",
    "load_config",
    "open_channel",
    "open_store",
    "parse_duration",
    "run",
    "serve",
    "setup_logging",
]
