"""The amoCRM / Kommo adapter (`[crm:NAME] type = amocrm`): each leg logged once, with its recording (docs/crm.md)."""

from __future__ import annotations

from .requests import AmoOptions
from .settings import AmoSettings
from .sink import AmoSink

__all__ = ["AmoOptions", "AmoSettings", "AmoSink"]
