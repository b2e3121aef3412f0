"""The Bitrix24 adapter (`[crm:NAME] type = bitrix24`): telephony REST for an external PBX (docs/crm.md)."""
from __future__ import annotations

from ...config import CrmConfig
from ..sink import SinkDeps
from .adapter import Bitrix24Sink
from .settings import Bitrix24Settings

__all__ = ["Bitrix24Settings", "Bitrix24Sink", "build"]


def build(config: CrmConfig, deps: SinkDeps) -> Bitrix24Sink:
    return Bitrix24Sink(Bitrix24Settings.from_config(config), deps)
