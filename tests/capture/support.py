"""Live captures of simulator scenarios, and webhooks compared the way a CRM would see them.

stack = start_stack(folder)                              # simulator, dispatcher, monitor, fake CRM
captured = capture_scenario(stack, "blind_transfer")     # `tcxhooks capture` attached while it plays
assert_same_webhooks(replayed_bodies, captured.webhooks)
"""

from __future__ import annotations

import datetime as dt
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from tests.fakes.receiver import Receiver
from tests.helpers.services import stop, tcxhooks_command, write_config
from tests.monitor.conftest import Monitor, start_pbx
from tests.monitor.expected import PARAMS

DATA = Path(__file__).resolve().parents[1] / "data" / "traces"
QUIET = 5.0  # seconds without a new webhook after a scenario finished: its webhooks are all in (a call missed at a
# queue ends up to 4 s late: the monitor waits for a callback's confirmation, services/monitor/callback.py)
TIMED = ("duration", "ringtime")
MOMENTS = ("event_at", "started_at", "answered_at", "ended_at")  # ISO-8601 times with their offset


@dataclass
class Stack:
    monitor: Monitor
    sim: subprocess.Popen[bytes]

    def stop(self) -> None:
        for proc in self.monitor.procs.values():
            stop(proc)
        stop(self.sim)
        self.monitor.crm.stop()


def start_stack(folder: Path, *sim_args: str, token: str = "", reconcile_delay: str = "5") -> Stack:
    """The simulator, the real dispatcher and monitor (ringingstopped and internal calls on, `[services]
    token` when given), a fake CRM."""
    sim, pbx = start_pbx(folder, *sim_args)
    crm = Receiver().start()
    services = {"token": token} if token else {}
    config = write_config(
        folder,
        services=services,
        pbx=pbx.section(reconcile_delay=reconcile_delay),
        events={"language": "en", "ringing_stopped": "true", "internal_calls": "true"},
        webhook={"url": crm.url},
        recordings={"enabled": "false"},
        dispatcher={"retry_schedule": "1s"},
    )
    stack = Stack(Monitor(pbx, crm, config, folder), sim)
    try:
        stack.monitor.start("dispatcher")
        stack.monitor.start("monitor")
    except BaseException:
        stack.stop()
        raise
    return stack


@dataclass
class Captured:
    lines: list[str]  # the trace
    webhooks: list[str]  # form bodies the CRM received while it was recorded, in arrival order
    stderr: str


def wait_quiet(crm: Receiver, quiet: float = QUIET, limit: float = 60) -> None:
    """Waits until no webhook arrived for `quiet` seconds."""
    deadline = time.monotonic() + limit
    seen, since = len(crm.requests), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError("webhooks keep arriving")
        time.sleep(0.1)
        if len(crm.requests) != seen:
            seen, since = len(crm.requests), time.monotonic()


def start_capture(stack: Stack, out: Path, *extra: str) -> subprocess.Popen[str]:
    """`tcxhooks capture` attached to the monitor; returns once the trace holds the header and the resync."""
    out.unlink(missing_ok=True)
    proc = subprocess.Popen(
        tcxhooks_command("capture", "-c", str(stack.monitor.config), "-o", str(out), *extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not (out.exists() and '"reason":"capture"' in out.read_text(encoding="utf-8")):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"capture did not start: {proc.communicate()[1]}")
        time.sleep(0.05)
    return proc


def end_capture(proc: subprocess.Popen[str]) -> str:
    """Stops a capture as Ctrl-C does; returns what it told the user."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def capture_scenario(stack: Stack, scenario: str, *extra: str, **params: Any) -> Captured:
    out = stack.monitor.folder / f"{scenario}.jsonl"
    crm = stack.monitor.crm
    wait_quiet(crm, quiet=0.5)
    before = len(crm.requests)
    proc = start_capture(stack, out, *extra)
    number = stack.monitor.pbx.play(scenario, **{**PARAMS, **params})["call_number"]
    stack.monitor.pbx.wait_done(number)
    wait_quiet(crm)
    err = end_capture(proc)
    return Captured(out.read_text(encoding="utf-8").splitlines(), [r.body.decode() for r in crm.requests[before:]], err)


# --- comparing webhooks ------------------------------------------------------------------------


def _chain(fields: dict[str, str]) -> str:
    return fields.get("id", "").rsplit("-", 1)[0]


def by_chain(bodies: list[str]) -> dict[str, list[dict[str, str]]]:
    """Form bodies grouped by call chain (the dispatcher keeps each chain's order, not the order across chains)."""
    out: dict[str, list[dict[str, str]]] = {}
    for body in bodies:
        fields = dict(parse_qsl(body, keep_blank_values=True))
        out.setdefault(_chain(fields), []).append(fields)
    return out


def _moment(text: str) -> float:
    when = dt.datetime.fromisoformat(text)
    assert when.tzinfo is not None, f"{text} has no offset"
    return when.timestamp()


def _untimed(fields: dict[str, str]) -> dict[str, str]:
    return {
        k: re.sub(r"\d+:\d\d:\d\d", "H:MM:SS", v) if k == "title" else "<time>" if k in MOMENTS else v
        for k, v in fields.items()
        if k not in TIMED
    }


def assert_same_webhooks(got: list[str], want: list[str], same_moments: bool = True) -> None:
    """Same chains, each with the same webhooks in the same order; durations and times may differ by a second
    (the trace stamps a change when it was received, the live monitor a few microseconds later). A trace
    played again happens later: `same_moments=False` checks its times are there, not when they are."""
    got_chains, want_chains = by_chain(got), by_chain(want)
    assert sorted(got_chains) == sorted(want_chains), f"chains {sorted(got_chains)} != {sorted(want_chains)}"
    for chain, expected in want_chains.items():
        actual = got_chains[chain]
        assert [_untimed(f) for f in actual] == [_untimed(f) for f in expected], f"chain {chain}"
        for a, e in zip(actual, expected, strict=True):
            for key in TIMED:
                assert abs(int(a.get(key, "0") or 0) - int(e.get(key, "0") or 0)) <= 1, (chain, key, a, e)
            for key in MOMENTS:
                if key in a:
                    gap = abs(_moment(a[key]) - _moment(e[key]))
                    assert gap <= 1 or not same_moments, (chain, key, a, e)


def replay_bodies(trace: Path, fmt: str = "form") -> list[str]:
    """What `tcxhooks replay` prints for a trace file, one body a line."""
    result = subprocess.run(
        tcxhooks_command("replay", str(trace), "--format", fmt), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "skipped" not in result.stderr, result.stderr
    return result.stdout.splitlines()


def renumbered(bodies: list[str]) -> list[str]:
    """Bodies with each chain's `<stamp>_<call number>` replaced by its rank among the call numbers: a trace played
    again gets new call numbers and dates, in the same order."""
    chains = sorted({_chain(dict(parse_qsl(b))) for b in bodies}, key=lambda c: int(c.rpartition("_")[2] or 0))
    rank = {chain: f"C{i}" for i, chain in enumerate(chains, 1)}

    def renumber(body: str) -> str:
        fields = parse_qsl(body, keep_blank_values=True)
        return urlencode(
            [(k, rank[v.rsplit("-", 1)[0]] + "-" + v.rsplit("-", 1)[1] if k == "id" else v) for k, v in fields]
        )

    return [renumber(body) for body in bodies]
