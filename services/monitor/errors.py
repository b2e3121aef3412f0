"""What can go wrong talking to the PBX; messages name the request that failed, never a secret.

    PbxError                 the PBX could not be reached or answered something unusable
     └── PbxHttpError        the PBX answered with an HTTP error status (`status`, `message`)
"""
from __future__ import annotations


class PbxError(Exception):
    """The PBX could not be reached or its answer could not be used."""


class PbxHttpError(PbxError):
    """The PBX answered `status` (401 after a fresh token, 403, 404, 5xx, …)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
