"""Errors of the dispatcher; the servicer maps them to gRPC status codes in one place.

    DispatcherError
     ├── InvalidEvent        a published event cannot be rendered (INVALID_ARGUMENT, never stored)
     ├── InvalidRequest      a bad admin request (INVALID_ARGUMENT)
     └── UnknownEndpoint     no endpoint of that name is configured (NOT_FOUND)
"""
from __future__ import annotations


class DispatcherError(Exception):
    """Base class of the dispatcher's own errors."""


class InvalidEvent(DispatcherError):
    """The event misses a field or has a value the webhook contract cannot carry."""


class InvalidRequest(DispatcherError):
    """An admin request with a bad argument."""


class UnknownEndpoint(DispatcherError):
    """No `[webhook]` / `[webhook:NAME]` endpoint has this name."""
