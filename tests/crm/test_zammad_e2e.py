"""Zammad end to end: the 3CX simulator, the real monitor, dispatcher and media as processes, and the
fake Zammad: its caller log after each docs/webhooks.md §6 scenario, a dispatcher killed after Zammad took
a newCall, a proxy rate-limiting us while the dispatcher's own schedule would wait minutes, `tcxhooks
check` and `tcxhooks demo --crm zammad`."""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.crm.stack import CrmStack, crm_stack
from tests.helpers.services import tcxhooks_command

FAST = {"ring_seconds": 0.5, "talk_seconds": 1.5, "wait_seconds": 1.5}
TOKEN = "e2e-zammad-cti-token"
CALLER, CALLEE, DID = "79161234567", "79031112233", "74951234567"


def section(url: str) -> dict[str, Any]:
    return {"type": "zammad", "url": url, "token": TOKEN}


@contextlib.contextmanager
def zammad_stack(folder: Path, *fake_args: str, **sections: dict[str, Any]) -> Iterator[CrmStack]:
    with crm_stack(folder, "zammad", ("--token", TOKEN, *fake_args), section, **sections) as stack:
        yield stack


def row(stack: CrmStack, number: int) -> dict[str, Any] | None:
    """The caller-log row of PBX call `number` (its call id is the chain `<yyMMddHHmmss>_<number>`)."""
    rows = [r for r in stack.state()["log"] if r["call_id"].endswith(f"_{number}")]
    assert len(rows) <= 1, rows  # one row per call, never two
    return rows[0] if rows else None


def settled(stack: CrmStack, number: int, played: int = 0) -> dict[str, Any]:
    """Waits until PBX call `number` is over (with the scenario the simulator played as `played`, if
    another), its row hung up and the dispatcher has nothing of it pending."""

    def done() -> bool:
        found = row(stack, number)
        return (
            bool(stack.sim_call(played or number).get("done"))
            and found is not None
            and found["state"] == "hangup"
            and stack.pending(found["call_id"]) == 0
        )

    stack.wait(done, timeout=90, what=f"Zammad's row of PBX call {number}")
    found = row(stack, number)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrmStack]:
    with zammad_stack(tmp_path_factory.mktemp("zammad")) as stack:
        yield stack


def shown(found: dict[str, Any]) -> tuple[Any, ...]:
    return (
        found["direction"],
        found["from_number"],
        found["to_number"],
        found["history"],
        found["comment"],
        found["done"],
    )


def test_the_scenarios_give_one_right_caller_log_row_each(shared: CrmStack) -> None:
    stack = shared
    found = settled(stack, stack.play("inbound_answered", **FAST))
    assert shown(found) == ("in", CALLER, DID, ["newCall", "answer", "hangup"], "normalClearing", True)
    assert found["to_comment"] and found["duration_talking_time"] is not None

    found = settled(stack, stack.play("queue_answered", **FAST))
    assert shown(found) == ("in", CALLER, DID, ["newCall", "answer", "hangup"], "normalClearing", True)
    assert found["queue"]  # the queue, for Zammad's caller-log filter

    found = settled(stack, stack.play("queue_abandoned_callback", **FAST))
    assert shown(found) == ("in", CALLER, DID, ["newCall", "hangup"], "cancel", False)  # missed, in red

    for scenario in ("blind_transfer", "attended_transfer"):  # one row, one answer: the transfer target's is not sent
        found = settled(stack, stack.play(scenario, **FAST))
        assert shown(found) == ("in", CALLER, DID, ["newCall", "answer", "hangup"], "normalClearing", True)

    found = settled(stack, stack.play("outbound_answered", **FAST))
    assert shown(found)[:1] + shown(found)[2:] == (
        "out",
        CALLEE,
        ["newCall", "answer", "hangup"],
        "normalClearing",
        True,
    )
    found = settled(stack, stack.play("outbound_unanswered", **FAST))
    assert shown(found)[:1] + shown(found)[2:] == ("out", CALLEE, ["newCall", "hangup"], "noAnswer", True)
    assert [c["status"] for c in stack.calls()] == [200] * len(stack.calls())


def test_a_dispatcher_killed_after_zammad_took_the_newcall_leaves_one_row(tmp_path: Path) -> None:
    with zammad_stack(tmp_path) as stack:
        # Zammad logs the newCall, then holds its answer back: the dispatcher is killed waiting for it
        stack.fake("/fake/fail", {"method": "newCall", "status": 200, "after": True, "delay": 120})
        number = stack.play("inbound_answered", ring_seconds=0.5, talk_seconds=3)
        stack.wait(lambda: row(stack, number) is not None, what="Zammad took the newCall")
        stack.kill9("dispatcher")
        stack.start("dispatcher")
        found = settled(stack, number)
        assert found["history"] == ["newCall", "answer", "hangup"] and found["comment"] == "normalClearing"
        again = [c for c in stack.calls() if c["method"] == "newCall"]
        assert [c["status"] for c in again] == [500]  # sent again: "Object already exists!", taken as done


def test_a_proxy_rate_limiting_us_loses_nothing_and_zammad_retries_within_seconds(tmp_path: Path) -> None:
    # the dispatcher's own schedule would wait 5 minutes before a second retry: Zammad's does not
    with zammad_stack(tmp_path, "--limit", "2", dispatcher={"retry_schedule": "5s,5m,30m"}) as stack:
        first = stack.play("parallel_calls", calls=5, ring_seconds=0.5, talk_seconds=1)
        for number in range(first, first + 5):  # the five calls of the one scenario played
            found = settled(stack, number, played=first)
            assert found["history"] == ["newCall", "answer", "hangup"] and found["done"]
        assert any(c["status"] == 429 for c in stack.calls())  # the proxy did refuse us
        # the proxy refuses the next 8 answers: each attempt waits out 4 refusals in place, so the answer
        # fails two attempts, and the third goes out seconds later
        stack.fake("/fake/fail", {"method": "answer", "status": 429, "count": 8})
        found = settled(stack, stack.play("inbound_answered", **FAST))
        assert found["history"] == ["newCall", "answer", "hangup"] and found["comment"] == "normalClearing"


def test_check_proves_the_adapter_without_writing_a_row(shared: CrmStack) -> None:
    rows = len(shared.state()["log"])
    result = subprocess.run(
        tcxhooks_command("check", "-c", str(shared.config)), capture_output=True, text=True, timeout=120
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("zammad cti")]
    assert len(lines) == 1 and " ok " in lines[0], result.stdout
    assert any(line.startswith("crm zammad") and " ok " in line for line in result.stdout.splitlines()), result.stdout
    assert len(shared.state()["log"]) == rows
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.slow
def test_the_zammad_demo_prints_the_cti_events_and_succeeds() -> None:
    result = subprocess.run(
        tcxhooks_command("demo", "--crm", "zammad", "--talk", "2", "--timeout", "240"),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    events = re.findall(r"^\s*\+\s*[\d.]+s\s+(\S+)", result.stdout, re.MULTILINE)
    assert events == ["newCall", "answer", "hangup"], result.stdout
    assert "done: the CRM got every call it should." in result.stdout
