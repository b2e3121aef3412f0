"""amoCRM end to end: the 3CX simulator, the real monitor, dispatcher and media as processes, and the
fake amoCRM account: what amoCRM holds after each docs/webhooks.md §6 scenario, a dispatcher killed while
amoCRM had taken a call but not yet answered, amoCRM rate-limiting us, `tcxhooks check` and
`tcxhooks demo --crm amocrm`."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.crm.stack import CrmStack, crm_stack
from tests.helpers.services import tcxhooks_command

FAST = {"ring_seconds": 0.5, "talk_seconds": 1.5, "wait_seconds": 1.5}
TOKEN = "e2e-amo-long-lived-token"
CALLER, CALLEE = "79161234567", "79031112233"  # the simulator's; the fake account has both as contacts
IVAN_LEAD, OLGA = 1002, 1003  # the fake account's: the caller's one active lead, the callee's contact


def section(url: str) -> dict[str, Any]:
    return {
        "type": "amocrm",
        "url": url,
        "token": TOKEN,
        "user_map": "101=501,102=502,103=503",
        "default_user": "501",
        "language": "en",
        "recording_wait": "1m",
    }


@contextlib.contextmanager
def amo_stack(folder: Path, *fake_args: str, **sections: dict[str, Any]) -> Iterator[CrmStack]:
    with crm_stack(folder, "amocrm", ("--token", TOKEN, *fake_args), section, "amo", **sections) as stack:
        yield stack


def leg_of(row: dict[str, Any]) -> str:
    """The leg id an amoCRM call or Unsorted entry carries."""
    return str(row.get("body", {}).get("uniq") or row.get("source_uid") or "")


def of_call(rows: list[dict[str, Any]], number: int) -> list[dict[str, Any]]:
    """The calls or Unsorted entries of PBX call `number` (leg ids `<yyMMddHHmmss>_<number>-<link>`)."""
    return sorted((r for r in rows if f"_{number}-" in leg_of(r)), key=leg_of)


def settled(stack: CrmStack, number: int, calls: int) -> list[dict[str, Any]]:
    """Waits until PBX call `number` is over, amoCRM holds its `calls` calls and the dispatcher has
    nothing of its chain pending; returns those calls, by leg."""

    def done() -> bool:
        logged = of_call(stack.state()["calls"], number)
        return (
            bool(stack.sim_call(number).get("done"))
            and len(logged) == calls
            and stack.pending(leg_of(logged[0]).rsplit("-", 1)[0]) == 0
        )

    stack.wait(done, timeout=90, what=f"amoCRM's calls of PBX call {number}")
    return of_call(stack.state()["calls"], number)


def summary(call: dict[str, Any]) -> tuple[Any, ...]:
    body = call["body"]
    return (
        leg_of(call).rsplit("-", 1)[1],
        body["direction"],
        body["call_status"],
        body["phone"],
        body.get("responsible_user_id"),
        call["entity_type"],
        call["entity_id"],
        "link" in body,
    )


def notified(stack: CrmStack, since: int) -> list[list[int]]:
    return [e["users"] for e in stack.state()["phone_events"][since:]]


def tasks(stack: CrmStack, calls: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    legs = {leg_of(c) for c in calls}
    return [
        (t["entity_type"], t["entity_id"], t["responsible_user_id"])
        for t in stack.state()["tasks"]
        if any(leg in t["text"] for leg in legs)
    ]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrmStack]:
    with amo_stack(tmp_path_factory.mktemp("amo")) as stack:
        yield stack


def test_the_scenarios_give_the_exact_amocrm_calls(shared: CrmStack) -> None:
    stack = shared
    seen = len(stack.state()["phone_events"])
    calls = settled(stack, stack.play("inbound_answered", **FAST), 1)
    assert [summary(c) for c in calls] == [("1", "inbound", 4, CALLER, 501, "leads", IVAN_LEAD, True)]
    assert calls[0]["body"]["duration"] >= 1 and ".mp3" in calls[0]["body"]["link"]
    assert notified(stack, seen) == [[501]] and tasks(stack, calls) == []

    seen = len(stack.state()["phone_events"])
    calls = settled(stack, stack.play("queue_answered", **FAST), 1)
    assert [summary(c) for c in calls] == [("1", "inbound", 4, CALLER, 502, "leads", IVAN_LEAD, True)]
    assert notified(stack, seen) == [[501], [502]]

    seen = len(stack.state()["phone_events"])
    calls = settled(stack, stack.play("queue_abandoned_callback", **FAST), 1)
    assert [summary(c) for c in calls] == [("0", "inbound", 6, CALLER, 501, "leads", IVAN_LEAD, False)]
    assert calls[0]["body"]["duration"] == 0
    assert tasks(stack, calls) == [("leads", IVAN_LEAD, 501)] and notified(stack, seen) == [[501], [502]]

    seen = len(stack.state()["phone_events"])
    calls = settled(stack, stack.play("blind_transfer", **FAST), 2)
    assert [summary(c) for c in calls] == [
        ("1", "inbound", 4, CALLER, 501, "leads", IVAN_LEAD, True),
        ("2", "inbound", 4, CALLER, 502, "leads", IVAN_LEAD, True),
    ]
    assert calls[0]["body"]["link"] != calls[1]["body"]["link"] and notified(stack, seen) == [[501], [502]]

    seen = len(stack.state()["phone_events"])
    calls = settled(stack, stack.play("attended_transfer", **FAST), 2)
    assert [summary(c) for c in calls] == [
        ("1", "inbound", 4, CALLER, 501, "leads", IVAN_LEAD, True),
        ("2", "inbound", 4, CALLER, 502, "leads", IVAN_LEAD, True),
    ]
    assert notified(stack, seen) == [[501]]

    seen = len(stack.state()["phone_events"])
    calls = settled(stack, stack.play("outbound_answered", **FAST), 1)
    assert [summary(c) for c in calls] == [("1", "outbound", 4, CALLEE, 501, "contacts", OLGA, True)]
    calls = settled(stack, stack.play("outbound_unanswered", **FAST), 1)
    assert [summary(c) for c in calls] == [("0", "outbound", 6, CALLEE, 501, "contacts", OLGA, False)]
    assert tasks(stack, calls) == [] and notified(stack, seen) == []

    legs = [leg_of(c) for c in stack.state()["calls"]]
    assert len(legs) == len(set(legs)) == 9  # one amoCRM call per leg of the seven scenarios, none twice
    assert stack.state()["unsorted"] == []


def test_a_dispatcher_killed_after_amo_took_the_call_leaves_no_duplicate(tmp_path: Path) -> None:
    with amo_stack(tmp_path) as stack:
        # amoCRM adds the call, then holds its answer back: the dispatcher is killed waiting for it
        stack.fake("/fake/fail", {"method": "POST /api/v4/calls", "status": 200, "after": True, "delay": 120})
        number = stack.play("inbound_answered", **FAST)
        stack.wait(lambda: len(of_call(stack.state()["calls"], number)) == 1, what="amoCRM took the call")
        stack.kill9("dispatcher")
        stack.start("dispatcher")
        assert len(settled(stack, number, 1)) == 1 and len(stack.state()["calls"]) == 1
        found = [c for c in stack.calls() if c["method"] == "GET /api/v4/leads/notes"]
        assert found and found[-1]["status"] == 200  # looked up by its uniq instead of added again


def test_amo_rate_limiting_us_loses_nothing(tmp_path: Path) -> None:
    with amo_stack(tmp_path, "--limit", "2", dispatcher={"retry_schedule": "1s,2s,5s,10s,20s,30s"}) as stack:
        first = stack.play("parallel_calls", calls=5, ring_seconds=0.5, talk_seconds=1)
        stack.wait(
            lambda: len(stack.state()["calls"]) + len(stack.state()["unsorted"]) == 5,
            timeout=120,
            what="five calls in amoCRM",
        )
        state = stack.state()
        assert any(c["status"] == 429 for c in stack.calls())  # amoCRM did refuse us
        assert [c["body"]["phone"] for c in state["calls"]] == [CALLER]  # the one caller amoCRM knows
        assert sorted(u["metadata"]["from"] for u in state["unsorted"]) == [str(int(CALLER) + i) for i in range(1, 5)]
        assert all(c["body"].get("link") for c in state["calls"])
        assert all(u["metadata"].get("link") for u in state["unsorted"])
        assert {leg_of(r).split("_")[1].split("-")[0] for r in state["calls"] + state["unsorted"]} == {
            str(first + i) for i in range(5)
        }


def test_check_proves_the_adapter_without_changing_amo(shared: CrmStack) -> None:
    before = shared.state()
    result = subprocess.run(
        tcxhooks_command("check", "-c", str(shared.config)), capture_output=True, text=True, timeout=120
    )
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("amo ")}
    assert set(lines) == {"auth", "users", "notify"}, result.stdout
    assert all(" ok " in line for line in lines.values()), result.stdout
    assert "101 → 501 Anna Petrova" in lines["users"] and "tcxdemo" in lines["auth"]
    assert any(line.startswith("crm amo") and " ok " in line for line in result.stdout.splitlines()), result.stdout
    after = shared.state()
    for kept in ("calls", "notes", "tasks", "unsorted", "phone_events"):
        assert after[kept] == before[kept], kept
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.slow
def test_the_amocrm_demo_prints_amos_calls_and_succeeds() -> None:
    result = subprocess.run(
        tcxhooks_command("demo", "--crm", "amocrm", "--talk", "2", "--timeout", "240"),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for method in ("POST /api/v2/events", "POST /api/v4/calls"):
        assert method in result.stdout, result.stdout
    assert "done: the CRM got every call it should." in result.stdout
