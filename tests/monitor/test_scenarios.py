"""Every simulator scenario end to end (simulator → monitor → dispatcher → CRM): exact ordered bodies per call.

All scenarios play at once on one stack (interleaved, as on a real PBX); each test checks its own call.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .expected import EXPECTED, PARAMS, check
from .table import Played, played

OUTBOUND = {"outbound_answered", "outbound_unanswered"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    # Callbacks are counted per queue over a time window (docs/3cx.md §4.3): the abandoned call
    # without a callback plays once the one with a callback is over.
    rows = {name: (name, PARAMS) for name in EXPECTED if name != "queue_abandoned"}
    with played(
        tmp_path_factory.mktemp("scenarios"),
        rows,
        later={"queue_abandoned": ("queue_abandoned", PARAMS)},
        after="queue_abandoned_callback",
    ) as result:
        yield result


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_scenario_bodies(run: Played, scenario: str) -> None:
    prefix, bodies = run.call(scenario)
    check(scenario, prefix, bodies, outbound=scenario in OUTBOUND)


def test_no_events_from_other_calls(run: Played) -> None:
    """The consultation call of the attended transfer is internal: no webhooks of its own."""
    assert run.strays() == {}
