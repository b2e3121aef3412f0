"""Structured logs to stderr, text or JSON, with every configured secret redacted, and every URL shown with
its password and query values as *** (a library's message may carry a URL with a token or a signature).

Context goes in `extra` (`call_id`, `delivery_id`, `attempt`, ...) and is printed as key=value
(text) or as JSON fields.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

from .config import redacted_urls

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
REDACTED = "***"


class RedactingFilter(logging.Filter):
    """Replaces any known secret value in the final message (and extras) with ***, and redacts URLs."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 4 and secret not in self.secrets:
            self.secrets = sorted([*self.secrets, secret], key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return redacted_urls(text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        line = f"{stamp}.{int(record.msecs):03d} {record.levelname:<7} {record.name}: {record.getMessage()}"
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_text or record.exc_info:
            line += "\n" + (record.exc_text or self.formatException(record.exc_info))  # type: ignore[arg-type]
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            body[key] = value if isinstance(value, (int, float, bool, str, type(None))) else str(value)
        if record.exc_text or record.exc_info:
            body["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(body, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "text", secrets: Iterable[str] = (), service: str = "") -> None:
    """Configures the root logger once per process (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "httpx", "httpcore", "websockets", "botocore", "urllib3", "grpc"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def redact(secret: str) -> None:
    """Redacts a secret learnt after start-up (a token read from a file) from every later log line."""
    for handler in logging.getLogger().handlers:
        for found in handler.filters:
            if isinstance(found, RedactingFilter):
                found.add(secret)
