"""The ways an analytics job can go wrong, and whether trying again can help."""
from __future__ import annotations


class AnalyticsError(Exception):
    """A job step failed; `reason` labels the failure metric, `retryable` says whether to try again.

    `max_attempts` bounds retries of this kind of error (0: only the job deadline bounds them);
    `delay` is a minimum wait before the next try (e.g. from Retry-After or a quota answer).
    """

    def __init__(self, message: str, *, reason: str, retryable: bool, max_attempts: int = 0,
                 delay: float = 0.0) -> None:
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable
        self.max_attempts = max_attempts
        self.delay = delay


def permanent(message: str, reason: str) -> AnalyticsError:
    return AnalyticsError(message, reason=reason, retryable=False)


def transient(message: str, reason: str, *, max_attempts: int = 0, delay: float = 0.0) -> AnalyticsError:
    return AnalyticsError(message, reason=reason, retryable=True, max_attempts=max_attempts, delay=delay)


def no_backend(detail: str) -> AnalyticsError:
    return permanent(f"no backend configured: {detail}", "no_backend")
