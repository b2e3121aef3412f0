"""Captures every simulator scenario live into tests/data/traces/: `<scenario>.jsonl` (the trace) and
`<scenario>.webhooks` (the form bodies the CRM received meanwhile, in arrival order).

    python -m tests.capture.record              # all scenarios; needs nothing running
    python -m tests.capture.record blind_transfer

Run it again when the simulator gains a scenario or a scenario changes; test_traces.py replays every trace
and expects the recorded webhooks.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tcxhooks.simulator import scenarios

from .support import DATA, assert_same_webhooks, capture_scenario, replay_bodies, start_stack

# Fixed parameters for the scenarios whose output depends on them.
PARAMS = {"random": {"seed": 7}, "parallel_calls": {"calls": 3}}


def main() -> None:
    wanted = sys.argv[1:] or scenarios.names()
    DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        stack = start_stack(Path(folder))
        try:
            for scenario in wanted:
                captured = capture_scenario(stack, scenario, **PARAMS.get(scenario, {}))
                trace = DATA / f"{scenario}.jsonl"
                trace.write_text("\n".join(captured.lines) + "\n", encoding="utf-8")
                (DATA / f"{scenario}.webhooks").write_text("\n".join(captured.webhooks) + "\n", encoding="utf-8")
                assert_same_webhooks(replay_bodies(trace), captured.webhooks)
                print(f"{scenario}: {len(captured.lines)} records, {len(captured.webhooks)} webhooks")
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
