"""When to try a failed delivery again: `[dispatcher] retry_schedule`, ±20 % jitter, `Retry-After`.

policy = RetryPolicy((5, 300, 1800))
policy.delay(failures=1)                   # ≈5 s (4–6 s); None once the schedule is used up
policy.delay(failures=1, retry_after=60)   # 60 s: the receiver asked for longer
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field

JITTER = 0.2
MAX_RETRY_AFTER = 24 * 3600.0


@dataclass
class RetryPolicy:
    schedule: tuple[float, ...]
    jitter: float = JITTER
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, failures: int, retry_after: float | None = None) -> float | None:
        """Seconds until the next attempt after `failures` failed ones in a row; None: give up (dead)."""
        if failures < 1 or failures > len(self.schedule):
            return None
        base = self.schedule[failures - 1]
        wait = base * self.rng.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after is not None and retry_after > wait:
            wait = min(retry_after, MAX_RETRY_AFTER)
        return wait


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
