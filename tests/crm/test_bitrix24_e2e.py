"""Bitrix24 end to end: the 3CX simulator, the real monitor, dispatcher and media as processes, and the
fake portal: the exact Bitrix24 calls of the docs/webhooks.md §6 scenarios, a dispatcher killed between
register and finish, the portal rate-limiting us, and click-to-call from the portal."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.crm.stack import PORTAL_SECRET, CrmStack, bitrix_stack
from tests.helpers.services import tcxhooks_command

FAST = {"ring_seconds": 0.5, "talk_seconds": 1.5, "wait_seconds": 1.5}


def chain_of(stack: CrmStack, number: int) -> str:
    """The call id prefix the monitor gave PBX call `number` (from the registrations of the portal)."""
    for registration in stack.state()["registrations"]:
        external = registration["external_id"]
        if external.split("-")[0].endswith(f"_{number}"):
            return str(external.rsplit("-", 1)[0])
    raise AssertionError(f"no registration for call {number}")


def per_call(stack: CrmStack, chain: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The successful calls of one chain grouped by Bitrix24 call (its EXTERNAL_CALL_ID's link), in order."""
    state = stack.state()
    external = {
        r["call_id"]: r["external_id"] for r in state["registrations"] if r["external_id"].startswith(chain + "-")
    }
    activity_call = {a["ID"]: a.get("CALL_ID") for a in state["activities"]}
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for call in stack.calls():
        if call["status"] != 200:
            continue
        params = call["params"]
        call_id = params.get("CALL_ID") or activity_call.get(params.get("parentActivityId"))
        key = params.get("EXTERNAL_CALL_ID") if call["method"].endswith(".register") else external.get(call_id)
        if isinstance(key, str) and key.startswith(chain + "-"):
            out.setdefault("-" + key.rsplit("-", 1)[1], []).append((call["method"].rsplit(".", 1)[-1], params))
    return out


def methods(calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [m for m, _ in calls]


def settled(stack: CrmStack, number: int, expected: dict[str, int]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Waits until the scenario's Bitrix24 calls number `expected` (link → count) and the PBX call is over."""

    def done() -> bool:
        if not stack.sim_call(number).get("done"):
            return False
        try:
            calls = per_call(stack, chain_of(stack, number))
        except AssertionError:
            return False
        return {k: len(v) for k, v in calls.items()} == expected

    stack.wait(done, timeout=90, what=f"the Bitrix24 calls of PBX call {number}: {expected}")
    stack.chains.append(chain_of(stack, number))
    return per_call(stack, stack.chains[-1])


def test_a_dispatcher_killed_between_register_and_finish_leaves_no_duplicate(tmp_path: Path) -> None:
    with bitrix_stack(tmp_path) as stack:
        # the portal registers the call but holds its answer back: the dispatcher dies before it has the CALL_ID
        stack.fake(
            "/fake/fail", {"method": "telephony.externalCall.register", "status": 200, "after": True, "delay": 30}
        )
        number = stack.play("inbound_answered", ring_seconds=0.5, talk_seconds=4)
        stack.wait(lambda: len(stack.state()["registrations"]) == 1, what="the register")
        stack.kill9("dispatcher")
        stack.wait(lambda: bool(stack.sim_call(number).get("done")), what="the end of the call")
        stack.start("dispatcher")
        calls = settled(stack, number, {"-0": 3})
        assert methods(calls["-0"]) == ["register", "finish", "attachRecord"]
        assert len(stack.state()["statistics"]) == 1 and len(stack.state()["registrations"]) == 1


def test_the_portal_rate_limiting_us_loses_nothing(tmp_path: Path) -> None:
    with bitrix_stack(tmp_path, portal_args=("--limit", "4", "--drain", "2")) as stack:
        stack.play("parallel_calls", calls=5, ring_seconds=0.5, talk_seconds=1)
        stack.wait(lambda: len(stack.state()["files"]) == 5, timeout=120, what="five recordings attached")
        state = stack.state()
        assert len(state["statistics"]) == 5 and len(state["registrations"]) == 5
        assert sorted(r["PORTAL_USER_ID"] for r in state["statistics"]) == [1, 11, 12, 13, 14]  # 105 → default
        assert any(c["error"] == "QUERY_LIMIT_EXCEEDED" for c in stack.calls())


# the tests below share one stack (started at its first use, stopped after the last)
@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrmStack]:
    """One stack for the tests that need nothing special of it."""
    with bitrix_stack(tmp_path_factory.mktemp("bitrix")) as stack:
        yield stack


def test_the_scenarios_give_the_exact_bitrix24_calls(shared: CrmStack) -> None:
    stack = shared
    calls = settled(stack, stack.play("inbound_answered", **FAST), {"-0": 3})
    assert methods(calls["-0"]) == ["register", "finish", "attachRecord"]
    register, finish, record = (p for _, p in calls["-0"])
    assert (register["USER_ID"], register["TYPE"], register["SHOW"], register["LINE_NUMBER"]) == (
        11,
        2,
        1,
        "74951234567",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", register["CALL_START_DATE"])
    assert (finish["USER_ID"], finish["STATUS_CODE"]) == (11, "200") and finish["DURATION"] >= 1
    assert record["FILENAME"].endswith("-1.mp3") and record["FILE_CONTENT"].startswith("<")

    calls = settled(stack, stack.play("queue_answered", **FAST), {"-0": 5})
    assert methods(calls["-0"]) == ["register", "show", "hide", "finish", "attachRecord"]
    assert calls["-0"][1][1]["USER_ID"] == [12] and calls["-0"][2][1]["USER_ID"] == [11]
    assert calls["-0"][3][1]["USER_ID"] == 12

    calls = settled(stack, stack.play("queue_abandoned_callback", **FAST), {"-0": 4})
    assert methods(calls["-0"]) == ["register", "show", "finish", "add"]
    finish, todo = calls["-0"][2][1], calls["-0"][3][1]
    assert (finish["STATUS_CODE"], finish["USER_ID"], finish["DURATION"]) == ("304", 1, 0)
    assert todo["ownerTypeId"] == 3 and todo["ownerId"] == 797 and "callback" in todo["description"]

    calls = settled(stack, stack.play("blind_transfer", **FAST), {"-0": 3, "-2": 3})
    assert methods(calls["-0"]) == methods(calls["-2"]) == ["register", "finish", "attachRecord"]
    assert calls["-2"][0][1]["USER_ID"] == 12 and calls["-2"][1][1]["USER_ID"] == 12

    calls = settled(stack, stack.play("attended_transfer", **FAST), {"-0": 3, "-2": 3})
    assert methods(calls["-0"]) == methods(calls["-2"]) == ["register", "finish", "attachRecord"]
    assert calls["-2"][0][1]["SHOW"] == 1 and calls["-2"][0][1]["USER_ID"] == 12

    calls = settled(stack, stack.play("outbound_answered", **FAST), {"-1": 3})
    assert methods(calls["-1"]) == ["register", "finish", "attachRecord"]
    assert (calls["-1"][0][1]["TYPE"], calls["-1"][0][1]["PHONE_NUMBER"]) == (1, "79031112233")

    calls = settled(stack, stack.play("outbound_unanswered", **FAST), {"-0": 2})
    assert methods(calls["-0"]) == ["register", "finish"]
    assert calls["-0"][1][1]["STATUS_CODE"] == "603-S"
    logged = [r for r in stack.state()["statistics"] if str(r["EXTERNAL_CALL_ID"]).rsplit("-", 1)[0] in stack.chains]
    assert len(logged) == 9  # one log entry per Bitrix24 call of the seven scenarios, none twice


def test_click_to_call_from_the_portal_is_a_real_call_finished_under_its_call_id(shared: CrmStack) -> None:
    stack = shared
    stack.wait(
        lambda: any(h["event"] == "ONEXTERNALCALLSTART" for h in stack.state()["handlers"]),
        what="the click-to-call handler bound",
    )
    httpx.post(
        f"{stack.sim_url}/sim/makecall", json={"scenario": "outbound_answered", "params": FAST}, timeout=10
    ).raise_for_status()
    clicked = stack.fake("/fake/click", {"user_id": 13, "phone": "+79035556677"})
    assert clicked["handlers"][0]["status"] == 200
    stack.wait(
        lambda: any(r["CALL_ID"] == clicked["call_id"] and r["RECORD_FILE_ID"] for r in stack.state()["statistics"]),
        timeout=60,
        what="the clicked call and its recording",
    )
    state = stack.state()
    row = next(r for r in state["statistics"] if r["CALL_ID"] == clicked["call_id"])
    assert row["PORTAL_USER_ID"] == 13 and row["CALL_FAILED_CODE"] == "200" and row["CALL_DURATION"] >= 1
    # the portal's own registration was the only one: tcxhooks never registered the clicked call again
    assert [r["external_id"] for r in state["registrations"] if r["call_id"] == clicked["call_id"]] == [""]
    assert not [
        c
        for c in stack.calls()
        if c["method"] == "telephony.externalCall.register" and c["params"]["PHONE_NUMBER"].endswith("79035556677")
    ]


def test_check_proves_the_adapter_without_changing_the_portal(shared: CrmStack) -> None:
    shared.wait(
        lambda: any(h["event"] == "ONEXTERNALCALLSTART" for h in shared.state()["handlers"]),
        what="the click-to-call handler bound",
    )
    before = len(shared.calls())
    result = subprocess.run(
        tcxhooks_command("check", "-c", str(shared.config)), capture_output=True, text=True, timeout=120
    )
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("b24 ")}
    assert set(lines) == {"auth", "line", "users", "click"}, result.stdout
    assert all(" ok " in line for line in lines.values()), result.stdout
    assert "101→11" in lines["users"] and "lines:" in lines["line"]
    assert any(line.startswith("crm b24") and " ok " in line for line in result.stdout.splitlines()), result.stdout
    made = [c["method"] for c in shared.calls()[before:]]
    assert made and all(m in ("app.info", "telephony.externalLine.get", "user.get", "event.get") for m in made), made
    assert PORTAL_SECRET not in result.stdout + result.stderr
