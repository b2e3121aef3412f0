"""Fuzz tests count rejections through the metrics; the warnings each rejection logs are silenced here
(thousands of them would only slow the examples down)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def quiet_warnings() -> Iterator[None]:
    logger = logging.getLogger("tcxhooks")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)
