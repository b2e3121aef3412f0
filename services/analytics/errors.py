"""The ways an analytics job can go wrong and whether trying again can help, and what the service's
RPCs answer with (the gRPC status of each class, platform/errors.py).

    AnalyticsError                        INTERNAL             a job step failed (`reason`, `retryable`)
     └── RefusedRequest                                        an RPC the service will not carry out
          ├── Disabled                    FAILED_PRECONDITION  [analytics] enabled = false
          ├── InvalidRequest              INVALID_ARGUMENT     a request missing a call id or its audio
          └── NotFound                    NOT_FOUND            no job for that call
"""

from __future__ import annotations

import grpc

from tcxhooks.platform.errors import ServiceError


class AnalyticsError(ServiceError):
    """A job step failed; `reason` labels the failure metric, `retryable` says whether to try again.

    `max_attempts` bounds retries of this kind of error (0: only the job deadline bounds them);
    `delay` is a minimum wait before the next try (e.g. from Retry-After or a quota answer).
    """

    def __init__(
        self, message: str, *, reason: str, retryable: bool, max_attempts: int = 0, delay: float = 0.0
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable
        self.max_attempts = max_attempts
        self.delay = delay


class RefusedRequest(AnalyticsError):
    """An RPC refused before any job work (never retried by the service itself)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="request", retryable=False)


class Disabled(RefusedRequest):
    code = grpc.StatusCode.FAILED_PRECONDITION


class InvalidRequest(RefusedRequest):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(RefusedRequest):
    code = grpc.StatusCode.NOT_FOUND


def permanent(message: str, reason: str) -> AnalyticsError:
    return AnalyticsError(message, reason=reason, retryable=False)


def transient(message: str, reason: str, *, max_attempts: int = 0, delay: float = 0.0) -> AnalyticsError:
    return AnalyticsError(message, reason=reason, retryable=True, max_attempts=max_attempts, delay=delay)


def no_backend(detail: str) -> AnalyticsError:
    return permanent(f"no backend configured: {detail}", "no_backend")
