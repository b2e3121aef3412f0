"""Captures every simulator scenario, and the real-V20 variants on some of them, live into tests/data/traces/:
`<name>.jsonl` (the trace) and `<name>.webhooks` (the form bodies the CRM received meanwhile, in arrival order).

    python -m tests.capture.record              # every scenario and variant; needs nothing running
    python -m tests.capture.record blind_transfer queue_answered@devices

Run it again when the simulator gains a scenario or a scenario changes; test_traces.py replays every trace
and expects the recorded webhooks.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tcxhooks.simulator import scenarios

from .support import DATA, Stack, assert_same_webhooks, capture_scenario, replay_bodies, start_stack

# Fixed parameters for the scenarios whose output depends on them.
PARAMS = {"random": {"seed": 7}, "parallel_calls": {"calls": 3}}
# The real-V20 variants (simulator/SCENARIOS.md, "Variants"), each on a scenario it changes:
# trace name → (scenario, play params); MONITORED_TRUNK's run on a simulator started with --monitor-trunk.
VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "queue_answered@devices": ("queue_answered", {"devices": 3}),
    "inbound_answered@devices": ("inbound_answered", {"devices": 2}),
    "caller_hangs_up_ringing@devices": ("caller_hangs_up_ringing", {"devices": 2}),
    "blind_transfer@recreate": ("blind_transfer", {"recreate": True}),
    "outbound_answered@makecall": ("outbound_answered", {"makecall": True}),
    "outbound_unanswered@makecall": ("outbound_unanswered", {"makecall": True}),
    "inbound_answered@unknown_status": ("inbound_answered", {"unknown_status": True}),
    "attended_transfer@caller_moves": ("attended_transfer", {"attended": "caller_moves"}),
    "two_transfers@devices+recreate": ("two_transfers", {"devices": 2, "recreate": True}),
}
MONITORED_TRUNK: dict[str, tuple[str, dict[str, object]]] = {
    f"{scenario}@monitored_trunk": (scenario, {})
    for scenario in (
        "inbound_answered",
        "outbound_answered",
        "queue_answered",
        "blind_transfer",
        "transfer_to_external",
    )
}


def record(stack: Stack, name: str, scenario: str, params: dict[str, object]) -> None:
    captured = capture_scenario(stack, scenario, **params)
    trace = DATA / f"{name}.jsonl"
    trace.write_text("\n".join(captured.lines) + "\n", encoding="utf-8")
    (DATA / f"{name}.webhooks").write_text("\n".join(captured.webhooks) + "\n", encoding="utf-8")
    assert_same_webhooks(replay_bodies(trace), captured.webhooks)
    print(f"{name}: {len(captured.lines)} records, {len(captured.webhooks)} webhooks")


def main() -> None:
    plain = {name: (name, PARAMS.get(name, {})) for name in scenarios.names()}
    runs = [((), {**plain, **VARIANTS}), (("--monitor-trunk",), MONITORED_TRUNK)]
    wanted = set(sys.argv[1:])
    DATA.mkdir(parents=True, exist_ok=True)
    for sim_args, traces in runs:
        chosen = {name: run for name, run in traces.items() if not wanted or name in wanted}
        if not chosen:
            continue
        with tempfile.TemporaryDirectory() as folder:
            stack = start_stack(Path(folder), *sim_args)
            try:
                for name, (scenario, params) in chosen.items():
                    record(stack, name, scenario, params)
            finally:
                stack.stop()


if __name__ == "__main__":
    main()
