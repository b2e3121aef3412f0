"""Shared plumbing of the four services: config, logging, metrics, gRPC, health, store, runtime."""
from .config import Config, ConfigError, load_config, parse_duration
from .grpc import create_server, open_channel
from .health import Health
from .logging import setup_logging
from .runtime import App, run, serve
from .store import Migration, Store, StoreError, open_store

__all__ = [
    "App",
    "Config",
    "ConfigError",
    "Health",
    "Migration",
    "Store",
    "StoreError",
    "create_server",
    "load_config",
    "open_channel",
    "open_store",
    "parse_duration",
    "run",
    "serve",
    "setup_logging",
]
