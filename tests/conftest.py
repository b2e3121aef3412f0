"""Shared pytest setup: a clean TCXH_* environment for every test."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TCXH_"):
            monkeypatch.delenv(name)
