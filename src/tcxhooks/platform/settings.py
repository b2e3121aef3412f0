"""The platform's own sections: [store] [services] [metrics] [log] (docs/config.md).

Every service process loads them beside its own settings (`runtime.run`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import URL_PASSWORD, Missing, Section, Settings, key
from .values import boolean, choice, duration, host_port, text, whole


def _store_url(value: str) -> str:
    value = value.strip()
    if value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
        return value
    if value.startswith(("postgresql://", "postgres://")):
        return value
    raise ValueError("sqlite:///path/to/file.db or postgresql://user@host/db")


@dataclass(frozen=True)
class StoreConfig(Section):
    """The store every service keeps its state in: SQLite for one host, PostgreSQL for several
    replicas."""

    SECTION = "store"
    url: str = key(
        "sqlite:///./data/tcxhooks.db",
        _store_url,
        "the shared store: sqlite:///FILE for one host, postgresql://user@host/db for several replicas",
        secret=URL_PASSWORD,
    )


SERVICE_NAMES = ("monitor", "dispatcher", "media", "analytics")  # the keys of [services] naming an address


@dataclass(frozen=True)
class ServicesConfig(Section):
    """How the services reach each other over gRPC; the defaults suit `tcxhooks up` on one host."""

    SECTION = "services"
    monitor: str = key("127.0.0.1:50051", host_port, "the monitor's gRPC host:port")
    dispatcher: str = key("127.0.0.1:50052", host_port, "the dispatcher's gRPC host:port")
    media: str = key("127.0.0.1:50053", host_port, "the media service's gRPC host:port")
    analytics: str = key("127.0.0.1:50054", host_port, "the analytics service's gRPC host:port")
    token: str = key(
        "",
        text,
        "bearer token the services require of each other and of the CLI; required when a service "
        "address is not loopback (`tcxhooks up` makes one per run when empty)",
        secret=True,
    )
    tls_cert: str = key(
        "",
        text,
        "the service's certificate (PEM file): its gRPC server speaks TLS; with "
        "tls_client_auth, also the client certificate it presents",
    )
    tls_key: str = key("", text, "the private key of tls_cert (PEM file)")
    tls_ca: str = key(
        "",
        text,
        "the CA certificate (PEM file) clients verify the services' certificates with "
        "(empty: the system's CAs); with tls_client_auth, servers verify clients with it too",
    )
    tls_client_auth: bool = key("false", boolean, "mutual TLS: servers require a client certificate signed by tls_ca")
    health_port: int = key(
        "0",
        whole(0, 65535),
        "a plaintext port answering gRPC health alone, for probes that "
        "cannot speak TLS (0: none; +0..+3 per service in `tcxhooks up`)",
    )
    grace: float = key("5", duration, "how long a stopping service lets work in flight finish")

    def address(self, service: str) -> str:
        """The gRPC address of `service` (monitor, dispatcher, media or analytics)."""
        value: str = getattr(self, service)
        return value

    def missing(self) -> list[Missing]:
        """The TLS keys that the ones set need."""
        found = []
        if self.tls_cert and not self.tls_key:
            found.append(Missing("services", "tls_key", "the private key of tls_cert"))
        if self.tls_key and not self.tls_cert:
            found.append(Missing("services", "tls_cert", "the certificate of tls_key"))
        if self.tls_client_auth and not self.tls_ca:
            found.append(
                Missing("services", "tls_ca", "the CA that signed the clients' certificates (tls_client_auth = true)")
            )
        if self.tls_client_auth and not self.tls_cert:
            found.append(Missing("services", "tls_cert", "the certificate clients present (tls_client_auth = true)"))
        return found


@dataclass(frozen=True)
class MetricsConfig(Section):
    """Prometheus metrics (`/metrics`)."""

    SECTION = "metrics"
    port: int = key("9464", whole(0, 65535), "Prometheus /metrics port (+0..+3 per service in `tcxhooks up`)")
    host: str = key(
        "",
        text,
        "the address /metrics listens on (empty: loopback when the service's gRPC address "
        "is loopback, as under `tcxhooks up`, else every interface)",
    )


@dataclass(frozen=True)
class LogConfig(Section):
    """Logs, written to stderr."""

    SECTION = "log"
    level: str = key("info", choice("debug", "info", "warning", "error"), "debug, info, warning or error")
    format: str = key("text", choice("text", "json"), "text or json")


@dataclass(frozen=True)
class PlatformSettings(Settings):
    store: StoreConfig
    services: ServicesConfig
    metrics: MetricsConfig
    log: LogConfig

    def missing(self) -> list[Missing]:
        return self.services.missing()
