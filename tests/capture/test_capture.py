"""`tcxhooks capture` against the real monitor, dispatcher and simulator: the trace replays to the webhooks
the CRM received, holds what the monitor received and never a secret; without a running monitor the
capture runs the monitor's PBX side itself."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.services import stop, tcxhooks_command, write_config
from tests.monitor.conftest import CLIENT_SECRET, start_pbx
from tests.monitor.expected import PARAMS

from .support import Stack, assert_same_webhooks, capture_scenario, end_capture, replay_bodies, start_stack

SERVICES_TOKEN = "capture-test-services-token"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("capture")
    # a PBX token minted every 2 s (mints show in the trace); services that need their token
    running = start_stack(folder, "--token-ttl", "4", token=SERVICES_TOKEN)
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("scenario", ["queue_answered", "attended_transfer", "transfer_to_external"])
def test_a_capture_replays_to_the_webhooks_the_crm_received(stack: Stack, scenario: str, tmp_path: Path) -> None:
    captured = capture_scenario(stack, scenario)
    trace = tmp_path / "trace.jsonl"
    trace.write_text("\n".join(captured.lines) + "\n", encoding="utf-8")
    assert captured.webhooks
    assert_same_webhooks(replay_bodies(trace), captured.webhooks)
    assert re.search(rf"\d+ records written to {re.escape(str(stack.monitor.folder))}", captured.stderr)


def test_the_trace_holds_what_the_monitor_received_and_no_secret(stack: Stack) -> None:
    captured = capture_scenario(stack, "blind_transfer")
    records = [json.loads(line) for line in captured.lines]
    header, kinds = records[0], [r["kind"] for r in records]
    assert header["kind"] == "header" and header["settings"]["graph"]["ringing_stopped"] is True
    assert next(r for r in records if r["kind"] == "snapshot")["reason"] == "capture"
    assert {"frame", "upsert", "remove", "xapi", "token"} <= set(kinds)
    assert all(isinstance(r["t"], float) and r["t"] >= header["t"] for r in records[1:])
    frames = [json.loads(r["text"]) for r in records if r["kind"] == "frame"]
    assert [f["event"]["event_type"] for f in frames].count(0) == kinds.count("upsert")  # every Upsert fetched
    assert any(r["kind"] == "xapi" and r["path"] == "/xapi/v1/ActiveCalls" for r in records)
    tokens = [r for r in records if r["kind"] == "token"]
    assert tokens and all(set(t) == {"t", "kind", "outcome", "lifetime"} for t in tokens)
    text = "\n".join(captured.lines)
    assert CLIENT_SECRET not in text and SERVICES_TOKEN not in text
    assert "Bearer" not in text and "access_token" not in text
    assert not re.search(r"eyJ[\w-]+\.[\w-]+\.", text)  # no JWT


def test_a_wrong_services_token_is_refused_and_no_pbx_session_opened(stack: Stack, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.ini"
    wrong.write_text(
        stack.monitor.config.read_text(encoding="utf-8").replace(SERVICES_TOKEN, "not-the-token"), encoding="utf-8"
    )
    result = subprocess.run(
        tcxhooks_command("capture", "-c", str(wrong), "-o", str(tmp_path / "t.jsonl"), "--minutes", "0.05"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "the monitor refused: wrong service token" in result.stderr, result.stderr
    assert "own PBX session" not in result.stderr and "not-the-token" not in result.stderr


def test_without_a_monitor_the_capture_runs_its_own_pbx_session(tmp_path: Path) -> None:
    sim, pbx = start_pbx(tmp_path)
    try:
        config = write_config(
            tmp_path,
            pbx=pbx.section(),
            events={"ringing_stopped": "true"},
        )
        out = tmp_path / "trace.jsonl"
        proc = subprocess.Popen(
            tcxhooks_command("capture", "-c", str(config), "-o", str(out)),
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not (out.exists() and '"reason":"connect"' in out.read_text(encoding="utf-8")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
            time.sleep(0.05)
        number = pbx.play("queue_answered", **PARAMS)["call_number"]
        pbx.wait_done(number)
        time.sleep(2.5)  # the grace, and the ActiveCalls read that ends the call
        err = end_capture(proc)
    finally:
        stop(sim)
    assert "no monitor answers" in err and "own PBX session" in err
    bodies = replay_bodies(out)
    events = [dict(p.split("=", 1) for p in b.split("&"))["event"] for b in bodies]
    assert events == ["ringing", "ringing", "ringing", "ringingstopped", "hangupincoming", "incoming"]
    assert all(f"_{number}-" in b for b in bodies)


def test_an_anonymized_capture_keeps_no_original_and_replays(stack: Stack, tmp_path: Path) -> None:
    from .test_anonymize import EMAILS, HOSTS, NAMES, NUMBERS

    captured = capture_scenario(stack, "queue_answered", "--anonymize")
    text = "\n".join(captured.lines)
    assert not {o for o in NUMBERS | NAMES | EMAILS | HOSTS if o in text}
    trace = tmp_path / "anonymized.jsonl"
    trace.write_text(text + "\n", encoding="utf-8")
    replayed = replay_bodies(trace)
    assert [b.split("&")[0] for b in replayed] == [b.split("&")[0] for b in captured.webhooks]
    assert all("user=800" in b or "user=10" in b for b in replayed)  # DNs stay
