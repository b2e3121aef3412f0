"""The Zammad adapter (`[crm:NAME] type = zammad`): generic CTI, one caller-log row per call chain (docs/crm.md)."""

from __future__ import annotations

from .mapping import ZammadOptions
from .settings import ZammadSettings
from .sink import ZammadSink

__all__ = ["ZammadOptions", "ZammadSettings", "ZammadSink"]
