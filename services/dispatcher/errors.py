"""Errors of the dispatcher, each with the gRPC status its RPCs answer with (platform/errors.py).

DispatcherError                       INTERNAL
 ├── InvalidEvent                     INVALID_ARGUMENT  a published event cannot be rendered (never stored)
 ├── InvalidRequest                   INVALID_ARGUMENT  a bad admin request
 ├── StaleFence                       ABORTED           a publisher that lost its lease (its Fence is stale)
 └── UnknownEndpoint                  NOT_FOUND         no endpoint of that name is configured
"""

from __future__ import annotations

import grpc

from tcxhooks.platform.errors import ServiceError


class DispatcherError(ServiceError):
    """Base class of the dispatcher's own errors."""


class InvalidEvent(DispatcherError):
    """The event misses a field or has a value the webhook contract cannot carry."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidRequest(DispatcherError):
    """An admin request with a bad argument."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class UnknownEndpoint(DispatcherError):
    """No `[webhook]` / `[webhook:NAME]` endpoint has this name."""

    code = grpc.StatusCode.NOT_FOUND


class StaleFence(DispatcherError):
    """The event came with a lease's fencing number below one already seen: its producer lost the lease."""

    code = grpc.StatusCode.ABORTED
