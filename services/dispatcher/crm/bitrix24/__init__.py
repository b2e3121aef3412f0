"""The Bitrix24 adapter (`[crm:NAME] type = bitrix24`): telephony REST for an external PBX (docs/crm.md)."""

from __future__ import annotations

from .adapter import Bitrix24Sink
from .settings import Bitrix24Settings

__all__ = ["Bitrix24Settings", "Bitrix24Sink"]
