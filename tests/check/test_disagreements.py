"""`tcxhooks check` with the monitor running prints the post-call check's counts since it started, and when the
PBX call log disagreed with the webhooks, a warning whose fix is the capture command to send the developers a
trace."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.capture.support import start_stack
from tests.monitor.expected import PARAMS


def _reconcile_lines(config: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "tcxhooks", "check", "-c", str(config)], capture_output=True, text=True, timeout=120
    )
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("pbx reconcile"))
    return [lines[at], *(line.strip() for line in lines[at + 1 : at + 3] if line.startswith(" "))]


def test_counts_since_start_and_the_capture_command_after_a_disagreement(tmp_path: Path) -> None:
    config = tmp_path / "tcxhooks.ini"
    stack = start_stack(tmp_path, reconcile_delay="0.2")
    try:
        monitor = stack.monitor

        def checked(count: int) -> None:
            deadline = time.monotonic() + 30
            while monitor.metric("tcxhooks_monitor_reconciled_calls_total") < count:
                assert time.monotonic() < deadline, monitor.logs()
                time.sleep(0.2)

        monitor.pbx.wait_done(monitor.pbx.play("inbound_answered", **PARAMS)["call_number"])
        checked(1)
        agreeing = _reconcile_lines(config)
        monitor.pbx.wait_done(monitor.pbx.play("inbound_answered", falsify_log="answered_by", **PARAMS)["call_number"])
        checked(2)
        disagreeing = _reconcile_lines(config)
    finally:
        stack.stop()
    assert agreeing == [
        "pbx reconcile      ok    since start 1 ended calls checked against the PBX call log: 1 "
        "agree, 0 disagree, 0 missing, 0 unreadable, 0 dropped (asked the running monitor)"
    ]
    line, fix = disagreeing
    assert line.startswith("pbx reconcile      warn  since start 2 ended calls checked")
    assert "1 agree, 1 disagree (answered_by 1)" in line
    assert fix == (
        f"fix: the PBX saw 1 call(s) otherwise than the webhooks said: record what the monitor receives "
        f"and send it to the developers (docs/3cx.md §8): tcxhooks capture -c {config} -o trace.jsonl "
        f"--minutes 30 --anonymize"
    )
