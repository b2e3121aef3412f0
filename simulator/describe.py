"""The participant sequence a scenario shows over Call Control, as text (used by SCENARIOS.md and its test).

python -m tcxhooks.simulator.describe [NAME...]   # prints the sequences in SCENARIOS.md's format
"""

from __future__ import annotations

import sys
from typing import Any

from . import scenarios
from .flow import Flow
from .state import TRUNK_DN
from .steps import Later, OrderCallback, Remove, Script, SplitRecording, Upsert, Wait

_SHOWN = (
    "status",
    "party_dn",
    "party_dn_type",
    "party_caller_id",
    "originated_by_dn",
    "referred_by_dn",
    "on_behalf_of_dn",
)


def _fields(fields: dict[str, Any]) -> str:
    out = []
    for key in _SHOWN:
        if key in fields and (key == "status" or fields[key] != ""):
            out.append(fields[key] if key == "status" else f"{key}={fields[key]}")
    return " ".join(out)


def sequence(script: Script) -> list[str]:
    """One line per visible change (`U`/`R` on a monitored DN) or notable step; hidden trunk legs are left out."""
    lines: list[str] = []
    seen: dict[str, dict[str, Any]] = {}
    calls: dict[str, str] = {}
    for step in script.steps:
        if isinstance(step, Upsert):
            if step.dn == TRUNK_DN:
                continue
            before = seen.get(step.leg)
            state = {**(before or {}), **step.fields}
            moved = before is not None and calls.get(step.leg) != step.call
            calls[step.leg] = step.call
            seen[step.leg] = state
            if before is None:
                lines.append(f"U {step.dn} [{step.leg}] call {step.call}: {_fields(state)}")
            else:
                changed = {k: v for k, v in step.fields.items() if before.get(k) != v}
                note = f" (moves to call {step.call})" if moved else ""
                lines.append(f"U {step.dn} [{step.leg}]{note}: {_fields(changed) or 'unchanged'}")
        elif isinstance(step, Remove):
            if step.leg in seen:
                lines.append(f"R {Flow.dn(step.leg)} [{step.leg}]")
        elif isinstance(step, Later):
            lines.append(
                f"R {Flow.dn(step.step.leg)} [{step.step.leg}] ({step.seconds:g} s later, while the call goes on)"
            )
        elif isinstance(step, Wait):
            if lines and lines[-1].startswith("wait"):
                continue
            lines.append("wait")
        elif isinstance(step, SplitRecording):
            lines.append(f"(recording of [{step.leg}] closed; a new wav file starts)")
        elif isinstance(step, OrderCallback):
            lines.append(f"(caller orders a callback at queue {step.queue})")
    while lines and lines[-1] == "wait":
        lines.pop()
    return lines


def main(argv: list[str] | None = None) -> None:
    names = (argv if argv is not None else sys.argv[1:]) or [n for n in scenarios.names() if n != "random"]
    for name in names:
        print(f"```\n# {name}")
        print("\n".join(sequence(scenarios.build(name))))
        print("```")


if __name__ == "__main__":
    main()
