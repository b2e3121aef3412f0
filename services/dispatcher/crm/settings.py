"""What every adapter's settings hold besides its CRM's own keys: its name, its request budget, its
HTTP client and how stale a real-time step may be (docs/crm.md).

    @dataclass(frozen=True)
    class MySettings(AdapterSettings):
        rate: float = 2.0          # the CRM's documented budget
        url: str = ""
    JsonApi.of(MySettings("mine"))  # a client with that budget, timeouts and CA bundle
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdapterSettings:
    name: str  # the [crm:NAME] name
    rate: float = 1.0  # requests a second (each adapter sets its CRM's)
    burst: int = 1  # requests at once above the rate
    stale_after: float = 20.0  # real-time steps of older events are skipped
    timeout: float = 15.0
    connect_timeout: float = 5.0
    ca_file: str = ""
    concurrency: int = 16

    def secrets(self) -> list[str]:
        """Values never to show in errors and logs."""
        return []
