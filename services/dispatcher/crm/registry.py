"""From `[crm:NAME]` sections to running adapters: each `type` is a package of this one
(`crm/bitrix24`, `crm/amocrm`, `crm/zammad`) with `build(config, deps) -> CrmSink`.

    sinks = [build_sink(crm, deps) for crm in settings.crms]
"""
from __future__ import annotations

import importlib
from typing import cast

from ..config import CrmConfig
from .sink import CrmSink, SinkDeps


def build_sink(config: CrmConfig, deps: SinkDeps) -> CrmSink:
    module = importlib.import_module(f"{__package__}.{config.type}")
    return cast(CrmSink, module.build(config, deps))
