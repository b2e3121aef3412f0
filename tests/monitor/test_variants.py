"""The real-PBX variants of docs/3cx.md end to end (simulator → monitor → dispatcher → CRM): each row plays a
scenario the way a real 3CX V20 may show it, and the CRM must receive exactly the plain scenario's webhooks.

One stack plays the per-call variants with the trunk unmonitored; a second one monitors the trunk (the trunk's
participants show up first in every external call) and plays every scenario, alone and with the variants.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .expected import EXPECTED, PARAMS, check
from .table import Played, Row, played

OUTBOUND = {"outbound_answered", "outbound_unanswered"}
EVERYTHING = {"devices": 2, "recreate": True, "unknown_status": True, "makecall": True}


def rows(table: dict[str, tuple[str, dict[str, Any]]], first: int) -> dict[str, Row]:
    """Rows with their variant params; each call comes from its own number (as calls do)."""
    return {
        name: (scenario, {**PARAMS, "caller": f"7916123{first + i:04d}", **variant})
        for i, (name, (scenario, variant)) in enumerate(table.items())
    }


# row → (scenario, variant params); every row must give EXPECTED[scenario].
VARIANTS = rows(
    {
        "devices_inbound": ("inbound_answered", {"devices": 3}),
        "devices_queue": ("queue_answered", {"devices": 3}),
        "devices_ring_group": ("ring_group", {"devices": 2}),
        "devices_nobody_answers": ("caller_hangs_up_ringing", {"devices": 3}),
        "devices_blind": ("blind_transfer", {"devices": 3}),
        "devices_attended": ("attended_transfer", {"devices": 2}),
        "devices_agent_rejects": ("agent_rejects", {"devices": 2}),
        "recreated_inbound": ("inbound_answered", {"recreate": True}),
        "recreated_blind": ("blind_transfer", {"recreate": True}),
        "recreated_to_external": ("transfer_to_external", {"recreate": True}),
        "makecall_answered": ("outbound_answered", {"makecall": True}),
        "makecall_unanswered": ("outbound_unanswered", {"makecall": True, "devices": 2}),
        "unknown_status_inbound": ("inbound_answered", {"unknown_status": True}),
        "unknown_status_queue": ("queue_answered", {"unknown_status": True}),
        "caller_moves": ("attended_transfer", {"attended": "caller_moves"}),
        "caller_moves_everything": ("attended_transfer", {**EVERYTHING, "attended": "caller_moves"}),
        "everything_blind": ("blind_transfer", EVERYTHING),
        "everything_two_transfers": ("two_transfers", EVERYTHING),
    },
    first=1000,
)
TRUNK_ROWS = {
    **{name: (name, PARAMS) for name in EXPECTED if name != "queue_abandoned"},
    **rows(
        {
            "trunk_devices_queue": ("queue_answered", {"devices": 3}),
            "trunk_makecall": ("outbound_answered", {"makecall": True}),
            "trunk_caller_moves": ("attended_transfer", {"attended": "caller_moves"}),
            "trunk_everything": ("transfer_to_queue", EVERYTHING),
        },
        first=2000,
    ),
}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    with played(tmp_path_factory.mktemp("variants"), VARIANTS) as run:
        yield run


@pytest.fixture(scope="module")
def trunk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    with played(
        tmp_path_factory.mktemp("trunk"),
        TRUNK_ROWS,
        later={"queue_abandoned": ("queue_abandoned", PARAMS)},
        after="queue_abandoned_callback",
        sim_args=("--monitor-trunk",),
    ) as run:
        yield run


@pytest.mark.parametrize("row", sorted(VARIANTS))
def test_variant_gives_the_plain_webhooks(variants: Played, row: str) -> None:
    scenario, params = VARIANTS[row]
    prefix, bodies = variants.call(row)
    outbound = scenario in OUTBOUND
    check(scenario, prefix, bodies, outbound=outbound, caller="" if outbound else params["caller"])


@pytest.mark.parametrize("row", sorted([*TRUNK_ROWS, "queue_abandoned"]))
def test_a_monitored_trunk_changes_no_webhook(trunk: Played, row: str) -> None:
    scenario, params = TRUNK_ROWS.get(row, (row, PARAMS))
    prefix, bodies = trunk.call(row)
    outbound = scenario in OUTBOUND
    check(scenario, prefix, bodies, outbound=outbound, caller="" if outbound else params.get("caller", ""))


def test_no_events_from_other_calls(variants: Played, trunk: Played) -> None:
    """Consultation calls are internal, a trunk is never a user: no webhooks of calls no row played."""
    assert variants.strays() == {} and trunk.strays() == {}
