"""The ini file of docs/config.md: loading, `TCXH_<SECTION>_<KEY>` overrides, `_FILE` secrets, redaction.

Each service owns its settings: `services/<name>/config.py` declares one dataclass per section it
owns (keys with their default, parser and meaning, made with `key()`) and a `Settings` class that
gathers them and names the keys it cannot run without (`missing()`). The platform owns [store]
[services] [metrics] [log] (`platform.settings`), and knows nothing of the other sections but their
names (`SECTION_NAMES`, for the unknown-section warning).

    config = load_config("tcxhooks.ini", (PlatformSettings, MonitorSettings))
    config[MonitorSettings].pbx.url, config[PlatformSettings].store.url

A section belongs to one service. Another service that needs one of its keys (the monitor asks
whether [recordings] is enabled) declares a *view*: a Section with `OWNED = False` holding only the
keys it reads, with the owner's default and parser but no meaning of its own (a test compares them
with the owner's; docs/config.md takes the meaning from the owner). Services thus never import each
other, and only the owner warns about unknown keys in its sections (each process warns about the
sections it owns; `tcxhooks up` and `check` load every service and warn about all of them).

A bad value raises `ConfigError` whose message is one line per problem naming the file, the
section as written, the key, the value and what is expected; the CLI prints it and exits 2.
Secret values are never echoed (they appear as `***`).
"""

from __future__ import annotations

import configparser
import dataclasses
import datetime as dt
import logging
import os
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

ENV_PREFIX = "TCXH_"
# Every section of docs/config.md; an ini section by another name is warned about as a typo.
SECTION_NAMES = (
    "pbx",
    "events",
    "webhook",
    "crm",
    "dispatcher",
    "recordings",
    "analytics",
    "store",
    "services",
    "metrics",
    "log",
)
# `secret` of a key: True when the whole value is secret, URL_PASSWORD when it is a URL whose
# password and query values alone are (shown as ***, the rest kept for troubleshooting)
URL_PASSWORD = "url-password"


class ConfigError(Exception):
    """The configuration cannot be used; str() is ready to print (one line per problem)."""


def key(default: str, parse: Callable[[str], Any], doc: str = "", secret: bool | str = False) -> Any:
    """One ini key of a Section dataclass: its default as written, its parser, what it means."""
    return field(
        default=parse(default), metadata={"raw_default": default, "parse": parse, "doc": doc, "secret": secret}
    )


class Section:
    """Base of a section's frozen dataclass; its fields made with `key()` are the section's keys.

    SECTION   the name in the ini file ([pbx]); with REPEATED, [webhook] and any [webhook:NAME], the
              instance's `name` field holding NAME ("default" for the bare one)
    OWNED     False for a view of another service's section (see the module docstring)
    ENV_KEY   of a repeated section: the key whose variable alone defines an instance that has no ini
              section (TCXH_WEBHOOK_CRM2_URL defines [webhook:crm2])
    """

    SECTION: ClassVar[str]
    OWNED: ClassVar[bool] = True
    REPEATED: ClassVar[bool] = False
    ENV_KEY: ClassVar[str] = ""

    @property
    def title(self) -> str:
        """The section as written in the ini file: `webhook`, `webhook:sales`."""
        return section_title(type(self), getattr(self, "name", "default"))


@dataclass(frozen=True)
class Missing:
    """A key a service cannot run without, unset: `[section] key is missing: expected <expected>`."""

    section: str
    key: str
    expected: str


class Settings:
    """Base of a service's frozen settings dataclass, whose fields are Section dataclasses (a tuple of
    them for a repeated section)."""

    def missing(self) -> Iterable[Missing]:
        """The required keys left unset (what a key's parser alone cannot tell)."""
        return ()

    def risks(self) -> Iterable[str]:
        """What works but leaves something open (an unchecked certificate, an unsigned endpoint): one
        sentence each, logged as a warning when the service starts and shown by `tcxhooks check`."""
        return ()


S = TypeVar("S", bound=Settings)


def keys_of(section: type[Section]) -> dict[str, dataclasses.Field[Any]]:
    """The section's ini keys by name."""
    return {f.name: f for f in fields(section) if "parse" in f.metadata}  # type: ignore[arg-type]


def sections_of(settings: type[Settings]) -> dict[str, type[Section]]:
    """A settings class's fields and the Section class each holds."""
    found: dict[str, type[Section]] = {}
    for name, hint in typing.get_type_hints(settings).items():
        if typing.get_origin(hint) is tuple:
            hint = typing.get_args(hint)[0]
        if isinstance(hint, type) and issubclass(hint, Section):
            found[name] = hint
    return found


def section_title(section: type[Section], name: str = "default") -> str:
    """The section as written in the ini file: `webhook`, `webhook:sales`."""
    return section.SECTION if not section.REPEATED or name == "default" else f"{section.SECTION}:{name}"


def env_name(title: str, key_name: str) -> str:
    """`webhook:crm2`, `url` → TCXH_WEBHOOK_CRM2_URL."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", f"{title}_{key_name}").upper()


@dataclass(frozen=True)
class Config:
    """What `load_config` read: the file's path and one instance per settings class asked for."""

    path: str
    settings: tuple[Settings, ...]
    # (section title, key) → where a value that is not the default came from, for messages
    sources: Mapping[tuple[str, str], str] = dataclasses.field(default_factory=dict)

    def __getitem__(self, cls: type[S]) -> S:
        for settings in self.settings:
            if isinstance(settings, cls):
                return settings
        raise KeyError(f"{cls.__name__} was not loaded")

    def origin(self, title: str, key_name: str) -> str:
        """Where `[title] key` was set: `[services] token in /etc/tcxhooks.ini`, `TCXH_SERVICES_TOKEN`,
        `TCXH_SERVICES_TOKEN_FILE=/run/secrets/token`; "" for a default."""
        return self.sources.get((title, key_name), "")

    def sections(self) -> Iterator[tuple[str, Section]]:
        """Every section instance with its title (a section shared by views appears once per view)."""
        for settings in self.settings:
            for name in sections_of(type(settings)):
                value = getattr(settings, name)
                for section in value if isinstance(value, tuple) else (value,):
                    yield section.title, section

    def secrets(self) -> list[str]:
        """Every secret value in force (for log redaction)."""
        found: list[str] = []
        for _, section in self.sections():
            for name, f in keys_of(type(section)).items():
                value = getattr(section, name)
                if f.metadata["secret"] == URL_PASSWORD:
                    found.extend(_url_secrets(value))
                elif f.metadata["secret"]:
                    found.extend(value if isinstance(value, tuple) else [value])
        return list(dict.fromkeys(s for s in found if s))

    def redacted(self) -> dict[str, dict[str, str]]:
        """The effective configuration with secrets shown as `***` (for the start-up log)."""
        out: dict[str, dict[str, str]] = {}
        for title, section in self.sections():
            shown = out.setdefault(title, {})
            for name, f in keys_of(type(section)).items():
                shown[name] = _masked(f.metadata["secret"], getattr(section, name))
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


# a URL inside some text: a scheme, then everything up to a blank, a quote or a bracket, less the
# punctuation that ends a sentence or a clause ("failed for https://host/x?a=1: refused")
_URL_IN_TEXT = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"()<>\[\]{}]*[^\s'\"()<>\[\]{}.,;:!?]", re.IGNORECASE)


def redacted_urls(text: str) -> str:
    """`text` with every URL in it shown as `redacted_url` shows it (passwords, query values: ***)."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda found: redacted_url(found.group(0)), text)


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
    return show_value(value)


def show_value(value: Any) -> str:
    """A parsed value as it would be written in the ini file."""
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    return str(value)


class _Loader:
    """Reads sections from the parsed file and the environment, collecting every problem."""

    def __init__(self, path: str, parser: configparser.ConfigParser, env: Mapping[str, str]) -> None:
        self.path = path
        self.parser = parser
        self.env = env
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.invalid: set[tuple[str, str]] = set()
        self.sources: dict[tuple[str, str], str] = {}
        self._parsed: dict[type[Section], Any] = {}

    def load(self, cls: type[Section]) -> Any:
        """The section's instance (a tuple of instances for a repeated section), parsed once per class."""
        if cls not in self._parsed:
            if cls.REPEATED:
                self._parsed[cls] = tuple(
                    self._section(cls, section_title(cls, name), raw, {"name": name})
                    for name, raw in self._instances(cls)
                )
            else:
                raw = self.parser[cls.SECTION] if self.parser.has_section(cls.SECTION) else {}
                self._parsed[cls] = self._section(cls, cls.SECTION, raw)
        return self._parsed[cls]

    def _instances(self, cls: type[Section]) -> list[tuple[str, Mapping[str, str]]]:
        """The repeated section's instances, the bare one first: from the file, then environment-only."""
        found: dict[str, Mapping[str, str]] = {}
        for title in self.parser.sections():
            base, colon, name = title.partition(":")
            if base != cls.SECTION:
                continue
            name = name.strip() if colon else "default"
            if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                self.errors.append(f"{self.path}: [{title}] name must be letters, digits, - or _")
                continue
            found[name.lower()] = self.parser[title]
        prefix = env_name(cls.SECTION, "")
        marker = "_" + cls.ENV_KEY.upper()
        for var in self.env:
            if var == prefix + cls.ENV_KEY.upper():
                found.setdefault("default", {})
            elif var.startswith(prefix) and var.endswith(marker) and len(var) > len(prefix + marker):
                found.setdefault(var[len(prefix) : -len(marker)].lower(), {})
        return sorted(found.items(), key=lambda item: (item[0] != "default", item[0]))

    def _section(
        self, cls: type[Section], title: str, raw: Mapping[str, str], extra: dict[str, Any] | None = None
    ) -> Any:
        values: dict[str, Any] = dict(extra or {})
        for name, f in keys_of(cls).items():
            variable = env_name(title, name)
            source, text = self.path, raw.get(name)
            where = f"[{title}] {name} in {self.path}"
            if variable in self.env:
                source, text = f"env {variable}", self.env[variable]
                where = variable
            elif f.metadata["secret"] and variable + "_FILE" in self.env:
                source = f"env {variable}_FILE"
                where = f"{variable}_FILE={self.env[variable + '_FILE']}"
                try:
                    with open(self.env[variable + "_FILE"], encoding="utf-8") as handle:
                        text = handle.read().strip()
                except OSError as exc:
                    self.errors.append(f"{self.path}: [{title}] {name}: cannot read {source} ({exc.strerror})")
                    continue
                if not text:  # an empty mounted secret is a mistake, never "no secret"
                    self.errors.append(
                        f"{self.path}: [{title}] {name}: {where} is empty: expected the secret "
                        f"(leave the variable unset when the key does not apply)"
                    )
                    continue
            if text is None:
                continue
            try:
                values[name] = f.metadata["parse"](text)
                self.sources[(title, name)] = where
            except ValueError as exc:
                secret = f.metadata["secret"]
                shown = "***" if secret is True else repr(_masked(secret, text.strip()))
                origin = "" if source == self.path else f" (from {source})"
                self.invalid.add((title, name))
                self.errors.append(f"{self.path}: [{title}] {name} = {shown}{origin}: expected {exc}")
        return cls(**values)

    def warn_unknown(self, loaded: Sequence[type[Section]]) -> None:
        """Unknown sections, and unknown keys in the sections a loaded class owns, by their title."""
        known: dict[str, set[str]] = {}
        owned = {cls.SECTION for cls in loaded if cls.OWNED}
        for cls in loaded:
            known.setdefault(cls.SECTION, set()).update(keys_of(cls))
        for title in self.parser.sections():
            base = title.partition(":")[0]
            if base not in SECTION_NAMES and base not in known:
                self.warnings.append(f"{self.path}: unknown section [{title}] ignored (typo?)")
            elif base in owned:
                for name in self.parser[title]:
                    if name not in known[base]:
                        self.warnings.append(f"{self.path}: [{title}] unknown key '{name}' ignored (typo?)")


def _read_ini(path: str | None) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        inline_comment_prefixes=(";", "#"), interpolation=None, default_section="__none__"
    )
    if not path:
        return parser
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except (configparser.DuplicateOptionError, configparser.DuplicateSectionError) as exc:
        what = (
            f"[{exc.section}] {exc.option}"
            if isinstance(exc, configparser.DuplicateOptionError)
            else f"[{exc.section}]"
        )
        raise ConfigError(f"{path}: {what} is set twice (line {exc.lineno}): expected it once") from None
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not a valid ini file: {first}") from None
    return parser


def load_config(path: str | None, settings: Sequence[type[Settings]], env: Mapping[str, str] | None = None) -> Config:
    """Reads the ini file (optional: the environment alone works) into each settings class asked for,
    and checks the keys each of them requires.

    Raises ConfigError with one line per problem; warnings are logged.
    """
    env = os.environ if env is None else env
    loader = _Loader(path or "(environment)", _read_ini(path), env)
    loaded: list[type[Section]] = []
    instances: list[Settings] = []
    for cls in settings:
        values = {}
        for name, section in sections_of(cls).items():
            values[name] = loader.load(section)
            loaded.append(section)
        instances.append(cls(**values))
    for instance in instances:
        for missing in instance.missing():
            if (missing.section, missing.key) not in loader.invalid:
                loader.errors.append(
                    f"{loader.path}: [{missing.section}] {missing.key} is missing: expected {missing.expected}"
                )
    loader.warn_unknown(loaded)
    for warning in dict.fromkeys(loader.warnings):
        log.warning("%s", warning)
    if loader.errors:
        raise ConfigError("\n".join(dict.fromkeys(loader.errors)))
    return Config(loader.path, tuple(instances), loader.sources)
