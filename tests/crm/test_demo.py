"""`tcxhooks demo --crm bitrix24` from the command line: the demo call reaches the fake portal as the
Bitrix24 calls the README promises, and the command says so with exit code 0."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers.services import tcxhooks_command


@pytest.mark.slow
def test_the_bitrix24_demo_prints_the_portal_calls_and_succeeds() -> None:
    result = subprocess.run(
        tcxhooks_command("demo", "--crm", "bitrix24", "--talk", "2", "--timeout", "240"),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "the portal installed the application: our install handler answered 200" in out
    for method in (
        "telephony.externalCall.register",
        "telephony.externalCall.finish",
        "telephony.externalCall.attachRecord",
    ):
        assert method in out, out
    assert "done: the CRM got every call it should." in out
    assert "fake-bitrix24-client-secret" not in out
