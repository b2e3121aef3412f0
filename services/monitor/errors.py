"""Errors of the monitor, each with the gRPC status its RPCs answer with (platform/errors.py);
messages name the request that failed, never a secret.

    MonitorError                          INTERNAL
     ├── InvalidRequest                   INVALID_ARGUMENT     a request missing a field or with a bad value
     ├── NotFound                         NOT_FOUND            no such live call, recording or DN
     ├── NotReady                         UNAVAILABLE          asked for what the monitor has not read yet
     ├── NotActive                        FAILED_PRECONDITION  a standby was asked to capture (capture/session.py)
     ├── CaptureOverrun                   RESOURCE_EXHAUSTED   a capture's reader fell behind (capture/recorder.py)
     └── PbxError                         UNAVAILABLE          the PBX could not be reached or answered unusably
          ├── PbxHttpError                UNAVAILABLE          the PBX answered an HTTP error (`status`, `message`)
          └── CallNotPlaced               FAILED_PRECONDITION  the PBX refused to place a call, and says why
"""

from __future__ import annotations

import grpc

from tcxhooks.platform.errors import ServiceError


class MonitorError(ServiceError):
    """Base class of the monitor's own errors."""


class InvalidRequest(MonitorError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(MonitorError):
    code = grpc.StatusCode.NOT_FOUND


class NotReady(MonitorError):
    """What was asked is not known yet (e.g. the directory before the first poll); ask again later."""

    code = grpc.StatusCode.UNAVAILABLE


class NotActive(MonitorError):
    """This monitor is a standby: the active one (the lease holder) is the one talking to the PBX."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class CaptureOverrun(MonitorError):
    """A capture's reader did not keep up; records were lost, so its trace would be wrong."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class PbxError(MonitorError):
    """The PBX could not be reached or its answer could not be used."""

    code = grpc.StatusCode.UNAVAILABLE


class PbxHttpError(PbxError):
    """The PBX answered `status` (401 after a fresh token, 403, 404, 5xx, …)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class CallNotPlaced(PbxError):
    """The PBX refused the call (finalstatus Failed / Rejected, or an error answer); says why."""

    code = grpc.StatusCode.FAILED_PRECONDITION
