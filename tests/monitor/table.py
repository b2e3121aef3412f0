"""Plays a table of simulator calls at once on one real stack (simulator → monitor → dispatcher → CRM) and
collects what the CRM received per call; the scenario and variant tests check each row against EXPECTED.

    with played(folder, {"row": ("inbound_answered", {...params})}, later={...}, after="row") as run:
        prefix, bodies = run.call("row")
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.receiver import Receiver
from tests.helpers.services import stop, write_config

from .conftest import Monitor, start_pbx
from .expected import EXPECTED

Row = tuple[str, dict[str, Any]]  # scenario, params


@dataclass
class Played:
    numbers: dict[str, int]  # row → call number of its call A
    by_prefix: dict[str, list[list[tuple[str, str]]]]  # call id prefix → the form bodies received, in order
    logs: str

    def call(self, row: str) -> tuple[str, list[list[tuple[str, str]]]]:
        """The one call id prefix the row's call was reported under, and its bodies."""
        number = self.numbers[row]
        prefixes = [p for p in self.by_prefix if p.endswith(f"_{number}")]
        assert len(prefixes) == 1, f"{row}: call {number} gave {prefixes}\n{self.logs}"
        return prefixes[0], self.by_prefix[prefixes[0]]

    def strays(self) -> dict[str, list[list[tuple[str, str]]]]:
        """Bodies of calls no row played (e.g. a consultation call reported by mistake)."""
        numbers = set(self.numbers.values())
        return {p: b for p, b in self.by_prefix.items() if int(p.rsplit("_", 1)[1]) not in numbers}


@contextmanager
def played(
    folder: Path,
    rows: dict[str, Row],
    later: dict[str, Row] | None = None,
    after: str = "",
    sim_args: tuple[str, ...] = (),
) -> Iterator[Played]:
    """Plays `rows` at once (interleaved, as on a real PBX), then `later` once the row `after` is done and its
    time window has passed (callbacks are counted per queue over a window, docs/3cx.md)."""
    later = later or {}
    sim, pbx = start_pbx(folder, *sim_args)
    crm = Receiver().start()
    config = write_config(
        folder,
        pbx=pbx.section(),
        events={"language": "en", "ringing_stopped": "true"},
        webhook={"url": crm.url},
        recordings={"enabled": "false"},
    )
    monitor = Monitor(pbx, crm, config, folder)
    try:
        monitor.start("dispatcher")
        monitor.start("monitor")
        numbers = {row: pbx.play(scenario, **params)["call_number"] for row, (scenario, params) in rows.items()}
        if later:
            pbx.wait_done(numbers[after])
            time.sleep(2.5)
            numbers.update(
                {row: pbx.play(scenario, **params)["call_number"] for row, (scenario, params) in later.items()}
            )
        for number in numbers.values():
            pbx.wait_done(number)
        total = sum(len(EXPECTED[scenario]) for scenario, _ in [*rows.values(), *later.values()])
        with suppress(AssertionError):  # each test reports what its own call is missing
            crm.wait_for_sync(total, timeout=30)
        time.sleep(2.5)  # anything extra (a duplicate or an invented event) would arrive within the grace
        by_prefix: dict[str, list[list[tuple[str, str]]]] = {}
        for request in crm.requests:
            body = request.form_items()
            by_prefix.setdefault(dict(body)["id"].rsplit("-", 1)[0], []).append(body)
        logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in folder.glob("*.log"))
        yield Played(numbers, by_prefix, logs)
    finally:
        for proc in monitor.procs.values():
            stop(proc)
        stop(sim)
        crm.stop()
