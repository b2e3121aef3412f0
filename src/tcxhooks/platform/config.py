"""The ini file of specs/config.md: typed sections, `TCXH_<SECTION>_<KEY>` overrides, validation.

    config = load_config("tcxhooks.ini", require=("monitor",))
    config.pbx.url, config.webhooks[0].secret, config.store.url

A bad value raises `ConfigError` whose message is one line per problem naming the file,
section, key, the value and what is expected; the CLI prints it and exits 2. Secret values
are never echoed (they appear as `***`).
"""
from __future__ import annotations

import configparser
import datetime as dt
import logging
import os
import re
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlparse, urlsplit

log = logging.getLogger(__name__)

ENV_PREFIX = "TCXH_"
SERVICES = ("monitor", "dispatcher", "media", "analytics")


class ConfigError(Exception):
    """The configuration cannot be used; str() is ready to print (one line per problem)."""


# --- value parsers: each returns the parsed value or raises ValueError(expected) -------------

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """`5`, `5s`, `250ms`, `5m`, `2h`, `1d` → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", text)
    if not match:
        raise ValueError("a duration such as 5, 5s, 250ms, 5m, 2h or 1d")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("true or false")


def _int(minimum: int = 0, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError("a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"a whole number from {minimum}" + (f" to {maximum}" if maximum is not None else " up"))
        return value

    return parse


def _float_positive(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("a number") from None
    if value <= 0:
        raise ValueError("a number above 0")
    return value


def _duration(text: str) -> float:
    return parse_duration(text)


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError(" or ".join(options))
        return value

    return parse


def _http_url(text: str) -> str:
    value = text.strip()
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("an http:// or https:// URL")
    return value


def _base_url(text: str) -> str:
    return _http_url(text).rstrip("/")


def _optional_http_url(text: str) -> str:
    return _http_url(text) if text.strip() else ""


def _optional_base_url(text: str) -> str:
    return _base_url(text) if text.strip() else ""


def _host_port(text: str) -> str:
    value = text.strip()
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("host:port, e.g. 127.0.0.1:50051")
    return value


def _optional_host_port(text: str) -> str:
    return _host_port(text) if text.strip() else ""


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _text(text: str) -> str:
    return text.strip()


def _secret(text: str) -> str:
    return text.strip()


def _webhook_secret(text: str) -> tuple[str, ...]:
    """One or more `whsec_<base64>` secrets (space or comma separated, for rotation)."""
    import base64
    import binascii

    secrets = tuple(s for s in re.split(r"[\s,]+", text.strip()) if s)
    for secret in secrets:
        if not secret.startswith("whsec_"):
            raise ValueError("whsec_ followed by base64 (several separated by spaces while rotating)")
        try:
            if not base64.b64decode(secret[len("whsec_"):], validate=True):
                raise ValueError
        except (binascii.Error, ValueError):
            raise ValueError("whsec_ followed by base64 (several separated by spaces while rotating)") from None
    return secrets


def _verify_tls(text: str) -> str:
    value = text.strip()
    if value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return "true" if _bool(value) else "false"
    if not os.path.exists(value):
        raise ValueError("true, false or the path of an existing CA bundle")
    return value


def _timezone(text: str) -> str:
    value = text.strip()
    if not value:
        return ""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("an IANA time zone such as Europe/Moscow, or empty for the host's") from None
    return value


def _clock_time(text: str) -> dt.time:
    try:
        return dt.datetime.strptime(text.strip(), "%H:%M").time()
    except ValueError:
        raise ValueError("a local time HH:MM such as 03:00") from None


def _store_url(text: str) -> str:
    value = text.strip()
    if value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
        return value
    if value.startswith(("postgresql://", "postgres://")):
        return value
    raise ValueError("sqlite:///path/to/file.db or postgresql://user@host/db")


def _retry_schedule(text: str) -> tuple[float, ...]:
    steps = _list(text)
    if not steps:
        raise ValueError("a comma list of durations such as 5s,5m,30m,2h")
    return tuple(parse_duration(step) for step in steps)


def _events_filter(text: str) -> tuple[str, ...]:
    items = _list(text)
    return items or ("*",)


def _bitrate(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"\d{1,3}k", value):
        raise ValueError("a bitrate such as 32k, 64k or 128k")
    return value


def _log_level(text: str) -> str:
    return _choice("debug", "info", "warning", "error")(text)


# --- sections ---------------------------------------------------------------------------------

# `secret` of a key: True when the whole value is secret, URL_PASSWORD when it is a URL whose
# password and query values alone are (shown as ***, the rest kept for troubleshooting)
URL_PASSWORD = "url-password"


def _key(default: str, parse: Callable[[str], Any], doc: str = "", secret: bool | str = False) -> Any:
    return field(default=parse(default), metadata={"raw_default": default, "parse": parse, "doc": doc, "secret": secret})


@dataclass(frozen=True)
class PbxConfig:
    url: str = _key("", _optional_base_url, "3CX V20 base URL (required for the monitor)")
    client_id: str = _key("", _text, "Call Control / XAPI client id")
    client_secret: str = _key("", _secret, "API key of the client", secret=True)
    verify_tls: str = _key("true", _verify_tls, "true, false, or a CA bundle path")
    timezone: str = _key("", _timezone, "zone of call ids (host's by default)")
    poll_interval: float = _key("5", _duration, "seconds between XAPI status polls")
    recordings: str = _key("xapi", _choice("xapi", "folder"), "where recordings come from")
    recordings_dir: str = _key("", _text, "recordings folder with recordings = folder")
    token_margin: float = _key("30", _duration, "refresh the token this long before it expires")
    ringing_grace: float = _key("1.5", _duration, "wait before deciding a call ended (queue waves, transfers)")
    lease_ttl: float = _key("5", _duration, "monitor leadership lease (standby takes over after it)")
    reconcile: bool = _key("true", _bool, "check every ended call against the PBX call log (needs System Owner)")
    reconcile_delay: float = _key("5", _duration, "wait after a call ends before reading its call-log rows")
    recover_outages: bool = _key("true", _bool, "after a Call Control outage or a restart, send the ended webhooks of "
                                 "the calls it hid, from the call log (needs System Owner)")

    @property
    def reads_call_log(self) -> bool:
        """The post-call check or outage recovery is on: the API client needs System Owner rights."""
        return self.reconcile or self.recover_outages


@dataclass(frozen=True)
class EventsConfig:
    language: str = _key("ru", _choice("ru", "en"), "title language")
    ringing_stopped: bool = _key("false", _bool, "send ringingstopped events")
    internal_calls: bool = _key("false", _bool, "report calls without an external party")


@dataclass(frozen=True)
class WebhookConfig:
    name: str = "default"
    url: str = _key("", _optional_http_url, "endpoint URL (required)", secret=URL_PASSWORD)
    format: str = _key("form", _choice("form", "json"), "form (seed-compatible) or json")
    secret: tuple[str, ...] = _key("", _webhook_secret, "whsec_ secrets", secret=True)
    events: tuple[str, ...] = _key("*", _events_filter, "event names or types to send")
    dids: tuple[str, ...] = _key("", _list, "only these DIDs")
    queues: tuple[str, ...] = _key("", _list, "only these queues")
    users: tuple[str, ...] = _key("", _list, "only these extensions")
    timeout: float = _key("15", _duration, "total request timeout")
    connect_timeout: float = _key("5", _duration, "connect timeout")
    ca_file: str = _key("", _text, "extra CA bundle for a private CRM")
    concurrency: int = _key("16", _int(1, 1024), "parallel requests to this endpoint")


@dataclass(frozen=True)
class DispatcherConfig:
    retry_schedule: tuple[float, ...] = _key("5s,5m,30m,2h,5h,10h,10h", _retry_schedule, "waits between attempts")
    transport: str = _key("httptools", _choice("httptools", "pyreqwest", "aiohttp", "httpx"), "HTTP client for deliveries")
    keep_days: int = _key("30", _int(1), "delivered events kept this many days")
    lease_ttl: float = _key("60", _duration, "how long a replica holds a claimed delivery")
    batch: int = _key("256", _int(1, 10000), "deliveries claimed per round")


@dataclass(frozen=True)
class RecordingsConfig:
    enabled: bool = _key("true", _bool, "convert and publish recordings")
    full_info: bool = _key("false", _bool, "add the call-ended fields to the recording webhook")
    retention_days: int = _key("90", _int(1), "days mp3 files are kept")
    purge_at: dt.time = _key("03:00", _clock_time, "local time of the nightly purge")
    storage: str = _key("local", _choice("local", "s3"), "local folder or S3/MinIO")
    local_dir: str = _key("./data/recordings", _text, "folder with storage = local")
    listen: str = _key("127.0.0.1:8480", _host_port, "media's HTTP server for the links")
    public_url: str = _key("http://127.0.0.1:8480", _base_url, "how CRMs reach the links")
    bitrate: str = _key("64k", _bitrate, "mp3 bitrate")
    grace: float = _key("3", _duration, "how long to wait for late wav files after hangup")
    jobs: int = _key("0", _int(0, 64), "parallel transcodes (0: one per core)")
    link_secret: str = _key("", _secret, "HMAC key of the links (default: derived from the store)", secret=True)
    s3_endpoint: str = _key("minio:9000", _host_port, "S3 endpoint host:port")
    s3_public_endpoint: str = _key("", _optional_host_port, "host:port CRMs use for presigned URLs (default s3_endpoint)")
    s3_access_key: str = _key("", _secret, "S3 access key", secret=True)
    s3_secret_key: str = _key("", _secret, "S3 secret key", secret=True)
    s3_bucket: str = _key("recordings", _text, "bucket")
    s3_secure: bool = _key("true", _bool, "https to S3")
    s3_region: str = _key("us-east-1", _text, "S3 region")


@dataclass(frozen=True)
class AnalyticsConfig:
    enabled: bool = _key("false", _bool, "transcribe and summarise recordings")
    backend: str = _key("yandex", _choice("yandex", "offline"), "yandex or offline")
    api_key: str = _key("", _secret, "Yandex Cloud API key", secret=True)
    iam_token: str = _key("", _secret, "Yandex IAM token (instead of api_key; it expires within 12 h)", secret=True)
    iam_token_file: str = _key("", _text, "a file holding the current Yandex IAM token, kept fresh by someone else "
                                          "and re-read when it changes (instead of api_key)")
    folder_id: str = _key("", _text, "Yandex Cloud folder id")
    language: str = _key("ru-RU", _text, "recognition language, e.g. ru-RU, en-US")
    summary_model: str = _key("yandexgpt-lite", _text, "YandexGPT model")
    stt_url: str = _key("https://stt.api.cloud.yandex.net", _base_url, "SpeechKit base URL")
    llm_url: str = _key("https://llm.api.cloud.yandex.net", _base_url, "Foundation Models base URL")
    operation_url: str = _key("https://operation.api.cloud.yandex.net", _base_url, "Operations base URL")
    concurrency: int = _key("2", _int(1, 64), "jobs at once")
    deadline: float = _key("24h", _duration, "give up on a job after this long")
    channels: tuple[str, ...] = _key("operator,client", _list, "speaker names of the stereo channels")


@dataclass(frozen=True)
class StoreConfig:
    url: str = _key("sqlite:///./data/tcxhooks.db", _store_url, "sqlite:///… or postgresql://…", secret=URL_PASSWORD)


@dataclass(frozen=True)
class ServicesConfig:
    monitor: str = _key("127.0.0.1:50051", _host_port, "monitor gRPC address")
    dispatcher: str = _key("127.0.0.1:50052", _host_port, "dispatcher gRPC address")
    media: str = _key("127.0.0.1:50053", _host_port, "media gRPC address")
    analytics: str = _key("127.0.0.1:50054", _host_port, "analytics gRPC address")
    token: str = _key("", _secret, "shared bearer token between services", secret=True)
    tls_cert: str = _key("", _text, "mTLS certificate")
    tls_key: str = _key("", _text, "mTLS key")
    tls_ca: str = _key("", _text, "mTLS CA")
    grace: float = _key("5", _duration, "graceful shutdown time")


@dataclass(frozen=True)
class MetricsConfig:
    port: int = _key("9464", _int(0, 65535), "Prometheus port (+0..+3 per service in `up`)")


@dataclass(frozen=True)
class LogConfig:
    level: str = _key("info", _log_level, "debug, info, warning, error")
    format: str = _key("text", _choice("text", "json"), "text or json")


SECTIONS: dict[str, type] = {
    "pbx": PbxConfig,
    "events": EventsConfig,
    "dispatcher": DispatcherConfig,
    "recordings": RecordingsConfig,
    "analytics": AnalyticsConfig,
    "store": StoreConfig,
    "services": ServicesConfig,
    "metrics": MetricsConfig,
    "log": LogConfig,
}


@dataclass(frozen=True)
class Config:
    path: str
    pbx: PbxConfig
    events: EventsConfig
    webhooks: tuple[WebhookConfig, ...]
    dispatcher: DispatcherConfig
    recordings: RecordingsConfig
    analytics: AnalyticsConfig
    store: StoreConfig
    services: ServicesConfig
    metrics: MetricsConfig
    log: LogConfig

    def secrets(self) -> list[str]:
        """Every secret value in force (for log redaction)."""
        found: list[str] = []
        sections: list[Any] = [getattr(self, name) for name in SECTIONS] + list(self.webhooks)
        for section in sections:
            for f in fields(section):
                value = getattr(section, f.name)
                if f.metadata.get("secret") == URL_PASSWORD:
                    found.extend(_url_secrets(value))
                elif f.metadata.get("secret"):
                    found.extend(value if isinstance(value, tuple) else [value])
        return [s for s in found if s]

    def redacted(self) -> dict[str, dict[str, str]]:
        """The effective configuration with secrets shown as `***` (for the start-up log)."""
        out: dict[str, dict[str, str]] = {}
        named: list[tuple[str, Any]] = [(n, getattr(self, n)) for n in SECTIONS]
        named += [(_webhook_section_name(w.name), w) for w in self.webhooks]
        for name, section in named:
            out[name] = {}
            for f in fields(section):
                if f.name == "name":
                    continue
                out[name][f.name] = _masked(f.metadata.get("secret"), getattr(section, f.name))
        return out


def redacted_url(url: str) -> str:
    """The URL with its password and query values (tokens often ride there) shown as ***."""
    parts = urlsplit(url)  # edited as text: urlunsplit would turn sqlite:///x into sqlite:/x
    if parts.password:
        url = url.replace(f":{parts.password}@", ":***@", 1)
    if parts.query:
        masked = "&".join(f"{name}=***" for name, _ in parse_qsl(parts.query, True))
        url = url.replace(f"?{parts.query}", f"?{masked}", 1)
    return url


def _url_secrets(url: str) -> list[str]:
    """A URL's password and its token-like query values, to be redacted wherever they appear in logs
    (short values such as `format=json` would blank unrelated words)."""
    parts = urlsplit(url)
    return [parts.password or "", *(value for _, value in parse_qsl(parts.query, True) if len(value) >= 8)]


def _masked(secret: bool | str, value: Any) -> str:
    """A value as logs and errors show it: a secret as ***, a URL with its password hidden."""
    if secret == URL_PASSWORD:
        return redacted_url(str(value))
    if secret and value:
        return "***"
    return _show(value)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    return str(value)


def _webhook_section_name(name: str) -> str:
    return "webhook" if name == "default" else f"webhook:{name}"


def _env_name(section: str, key: str) -> str:
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", f"{section}_{key}").upper()


class _Loader:
    def __init__(self, path: str, env: Mapping[str, str]) -> None:
        self.path = path or "(no file)"
        self.env = env
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.invalid: set[tuple[str, str]] = set()

    def section(self, cls: type, section: str, raw: Mapping[str, str], extra: dict[str, Any] | None = None) -> Any:
        known = {f.name: f for f in fields(cls) if "parse" in f.metadata}
        for key in raw:
            if key not in known:
                self.warnings.append(f"{self.path}: [{section}] unknown key '{key}' ignored (typo?)")
        values: dict[str, Any] = dict(extra or {})
        for name, f in known.items():
            env_name = _env_name(section, name)
            source, text = None, None
            if env_name in self.env:
                source, text = f"env {env_name}", self.env[env_name]
            elif f.metadata["secret"] and env_name + "_FILE" in self.env:
                file_path = self.env[env_name + "_FILE"]
                source = f"env {env_name}_FILE"
                try:
                    with open(file_path, encoding="utf-8") as handle:
                        text = handle.read().strip()
                except OSError as exc:
                    self.errors.append(f"{self.path}: [{section}] {name}: cannot read {source} ({exc.strerror})")
                    continue
            elif name in raw:
                source, text = self.path, raw[name]
            if text is None:
                continue
            try:
                values[name] = f.metadata["parse"](text)
            except ValueError as exc:
                shown = "***" if f.metadata["secret"] is True else repr(_masked(f.metadata["secret"], text.strip()))
                origin = "" if source == self.path else f" (from {source})"
                self.invalid.add((section, name))
                self.errors.append(f"{self.path}: [{section}] {name} = {shown}{origin}: expected {exc}")
        return cls(**values)


def _env_webhook_names(env: Mapping[str, str]) -> set[str]:
    """Names of `[webhook:NAME]` sections defined only through the environment."""
    keys = sorted((f.name.upper() for f in fields(WebhookConfig) if f.name != "name"), key=len, reverse=True)
    names: set[str] = set()
    for var in env:
        if not var.startswith(ENV_PREFIX + "WEBHOOK_"):
            continue
        rest = var[len(ENV_PREFIX + "WEBHOOK_"):].removesuffix("_FILE")
        for key in keys:
            if rest.endswith("_" + key):
                names.add(rest[: -len(key) - 1].lower())
                break
    return names


def load_config(path: str | None, env: Mapping[str, str] | None = None,
                require: tuple[str, ...] = ()) -> Config:
    """Reads the ini file (optional: env alone works) and returns the validated Config.

    `require` names the services about to run, whose required keys must be set.
    Raises ConfigError with one line per problem; warnings are logged.
    """
    env = os.environ if env is None else env
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None,
                                       default_section="__none__")
    shown_path = path or "(environment)"
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle, source=path)
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
        except (configparser.DuplicateOptionError, configparser.DuplicateSectionError) as exc:
            what = f"[{exc.section}] {exc.option}" if isinstance(exc, configparser.DuplicateOptionError) else f"[{exc.section}]"
            raise ConfigError(f"{path}: {what} is set twice (line {exc.lineno}): expected it once") from None
        except configparser.Error as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"{path}: not a valid ini file: {first}") from None
    loader = _Loader(shown_path, env)
    values: dict[str, Any] = {}
    webhook_sections: dict[str, Mapping[str, str]] = {}
    for name in parser.sections():
        if name == "webhook" or name.startswith("webhook:"):
            hook = "default" if name == "webhook" else name.split(":", 1)[1].strip()
            if not re.fullmatch(r"[A-Za-z0-9_-]+", hook):
                loader.errors.append(f"{shown_path}: [{name}] endpoint name must be letters, digits, - or _")
                continue
            webhook_sections[hook.lower()] = parser[name]
        elif name not in SECTIONS:
            loader.warnings.append(f"{shown_path}: unknown section [{name}] ignored (typo?)")
    for section, cls in SECTIONS.items():
        raw = parser[section] if parser.has_section(section) else {}
        values[section] = loader.section(cls, section, raw)
    if "default" not in webhook_sections and (ENV_PREFIX + "WEBHOOK_URL") in env:
        webhook_sections["default"] = {}
    for hook in _env_webhook_names(env):
        if hook not in ("", "default") and hook not in webhook_sections and (
                _env_name(f"webhook_{hook}", "url") in env):
            webhook_sections[hook] = {}
    webhooks = []
    for hook, raw in sorted(webhook_sections.items(), key=lambda item: item[0] != "default"):
        section_name = _webhook_section_name(hook)
        env_section = "webhook" if hook == "default" else f"webhook_{hook}"
        before = len(loader.errors)
        loader_section = loader.section(WebhookConfig, env_section, raw, {"name": hook})
        if len(loader.errors) > before:
            loader.errors[before:] = [e.replace(f"[{env_section}]", f"[{section_name}]") for e in loader.errors[before:]]
        webhooks.append(loader_section)
    config = Config(path=shown_path, webhooks=tuple(webhooks), **values)
    _check_required(config, require, loader)
    for warning in loader.warnings:
        log.warning("%s", warning)
    if loader.errors:
        raise ConfigError("\n".join(loader.errors))
    return config


def _check_required(config: Config, require: tuple[str, ...], loader: _Loader) -> None:
    """Adds a 'missing' line per required key that is unset (a key already reported as bad is not repeated)."""
    path = loader.path
    if ("pbx", "url") in loader.invalid:
        require = tuple(r for r in require if r != "monitor")
    if "monitor" in require and not config.pbx.url:
        loader.errors.append(f"{path}: [pbx] url is missing: expected the 3CX base URL, e.g. https://pbx.example.com")
    if "monitor" in require and config.pbx.url and not config.pbx.client_id:
        loader.errors.append(f"{path}: [pbx] client_id is missing: expected the API client id")
    if {"monitor", "media"} & set(require) and config.pbx.recordings == "folder" and not config.pbx.recordings_dir:
        loader.errors.append(f"{path}: [pbx] recordings_dir is missing: expected a folder with recordings = folder")
    if "dispatcher" in require:
        if not config.webhooks:
            loader.errors.append(f"{path}: [webhook] url is missing: expected the CRM endpoint URL")
        for hook in config.webhooks:
            env_section = "webhook" if hook.name == "default" else f"webhook_{hook.name}"
            if not hook.url and (env_section, "url") not in loader.invalid:
                name = _webhook_section_name(hook.name)
                loader.errors.append(f"{path}: [{name}] url is missing: expected the CRM endpoint URL")
    if "media" in require and config.recordings.storage == "s3":
        for key in ("s3_access_key", "s3_secret_key"):
            if not getattr(config.recordings, key):
                loader.errors.append(f"{path}: [recordings] {key} is missing: expected S3 credentials with storage = s3")
    if "analytics" in require and config.analytics.enabled and config.analytics.backend == "yandex":
        if not (config.analytics.api_key or config.analytics.iam_token or config.analytics.iam_token_file):
            loader.errors.append(f"{path}: [analytics] api_key is missing: expected a Yandex Cloud API key with backend = yandex "
                                 "(or iam_token, or iam_token_file)")
        if not config.analytics.folder_id:
            loader.errors.append(f"{path}: [analytics] folder_id is missing: expected the Yandex Cloud folder id")
