"""Every simulator scenario end to end (simulator → monitor → dispatcher → CRM): exact ordered bodies per call.

All scenarios play at once on one stack (interleaved, as on a real PBX); each test checks its own call.
"""
from __future__ import annotations

import time
from typing import Any, Iterator

import pytest

from tests.helpers.net import free_port
from tests.helpers.receiver import Receiver
from tests.helpers.services import start, stop, wait_healthy, write_config, read_config

from .conftest import CLIENT_ID, CLIENT_SECRET, start_pbx
from .expected import EXPECTED, PARAMS, check

OUTBOUND = {"outbound_answered", "outbound_unanswered"}


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("scenarios")
    sim, pbx = start_pbx(folder)
    crm = Receiver().start()
    config = write_config(folder, pbx={"url": pbx.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                       "ringing_grace": "1", "timezone": "UTC"},
                          events={"language": "en", "ringing_stopped": "true"}, webhook={"url": crm.url},
                          recordings={"enabled": "false"})
    procs = []
    try:
        for name in ("dispatcher", "monitor"):
            procs.append(start([name, "-c", str(config)], folder / f"{name}.log",
                               env={"TCXH_METRICS_PORT": str(free_port())}))
            wait_healthy(read_config(config)["services"][name], timeout=60)
        # Callbacks are counted per queue over a time window (3cx-v20.md §4.3): the abandoned call
        # without a callback plays once the one with a callback is over.
        numbers = {name: pbx.play(name, **PARAMS)["call_number"] for name in EXPECTED if name != "queue_abandoned"}
        pbx.wait_done(numbers["queue_abandoned_callback"])
        time.sleep(2.5)
        numbers["queue_abandoned"] = pbx.play("queue_abandoned", **PARAMS)["call_number"]
        for number in numbers.values():
            pbx.wait_done(number)
        total = sum(len(steps) for steps in EXPECTED.values())
        try:
            crm.wait_for_sync(total, timeout=30)
        except AssertionError:
            pass  # each test reports what its own call is missing
        time.sleep(2.5)  # anything extra (a duplicate or an invented event) would arrive within the grace
        by_prefix: dict[str, list[list[tuple[str, str]]]] = {}
        for request in crm.requests:
            body = request.form_items()
            by_prefix.setdefault(dict(body)["id"].rsplit("-", 1)[0], []).append(body)
        logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in folder.glob("*.log"))
        yield {"numbers": numbers, "by_prefix": by_prefix, "logs": logs}
    finally:
        for proc in procs:
            stop(proc)
        stop(sim)
        crm.stop()


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_scenario_bodies(played: dict[str, Any], scenario: str) -> None:
    number = played["numbers"][scenario]
    prefixes = [p for p in played["by_prefix"] if p.endswith(f"_{number}")]
    assert len(prefixes) == 1, f"{scenario}: call {number} gave {prefixes}\n{played['logs']}"
    check(scenario, prefixes[0], played["by_prefix"][prefixes[0]], outbound=scenario in OUTBOUND)


def test_no_events_from_other_calls(played: dict[str, Any]) -> None:
    """The consultation call of the attended transfer is internal: no webhooks of its own."""
    numbers = set(played["numbers"].values())
    strays = [p for p in played["by_prefix"] if int(p.rsplit("_", 1)[1]) not in numbers]
    assert strays == [], {p: played["by_prefix"][p] for p in strays}
