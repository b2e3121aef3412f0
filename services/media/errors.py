"""Errors of the media service: a job's permanent failures (bad audio) and transient ones (retried
later), and what its RPCs answer with (the gRPC status of each class, platform/errors.py).

    MediaError                            INTERNAL
     ├── InvalidRequest                   INVALID_ARGUMENT  a request naming no valid call id, DN or file
     ├── NotFound                         NOT_FOUND         no such recording job or stored file
     ├── BadAudio                                           a recording that cannot become an mp3 (skipped)
     │    └── UnsupportedFormat                             a wav codec PBXs do not record in
     ├── LegError                                           the leg cannot be looked up (the job fails)
     ├── PeerRefused                                        a peer refused the job's event for good (the job fails)
     └── TransientError                   UNAVAILABLE       a peer or the storage failed (retried with backoff)
          ├── ShortAudio                                    the wav ends before its header says
          ├── IncompleteMp3                                 ffmpeg's mp3 is shorter than its input
          ├── SourceUnavailable                             the monitor or the recordings folder cannot be read
          └── StorageError                                  the object storage refused or failed
               └── ObjectMissing          NOT_FOUND         the object is no longer stored
"""

from __future__ import annotations

import grpc

from tcxhooks.platform.errors import ServiceError


class MediaError(ServiceError):
    """Base of every media error; str() is a clear one-line reason."""


class InvalidRequest(MediaError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(MediaError):
    code = grpc.StatusCode.NOT_FOUND


class BadAudio(MediaError):
    """A recording that cannot become an mp3 (corrupt, empty, not a wav): skipped, never retried.
    `outcome` labels it in `files_total`."""

    outcome = "bad_audio"


class UnsupportedFormat(BadAudio):
    """A wav in a codec other than linear PCM or G.711 (A-law, µ-law), the formats PBXs record in."""

    outcome = "unsupported_format"


class LegError(MediaError):
    """The leg itself cannot be looked up (bad leg data refused by the source): the job fails."""


class PeerRefused(MediaError):
    """The dispatcher or analytics refused the job's event or request as invalid: sending it again cannot
    help, so the job fails with the peer's reason instead of holding its retries for ever."""


class TransientError(MediaError):
    """A peer or the storage failed; the job is retried later with backoff."""

    code = grpc.StatusCode.UNAVAILABLE


class ShortAudio(TransientError):
    """The wav ended before the audio size its header declares: still being copied, or cut.
    Retried a few times; then the audio there is becomes the mp3 (a warning says so)."""


class IncompleteMp3(TransientError):
    """ffmpeg's mp3 decodes to less than the audio it was given; transcoded again, never published cut."""


class SourceUnavailable(TransientError):
    """The monitor (xapi source) or the recordings folder cannot be read right now."""


class StorageError(TransientError):
    """The object storage refused or failed an operation."""


class ObjectMissing(StorageError):
    """The object is not in the storage (purged, or removed behind media's back)."""

    code = grpc.StatusCode.NOT_FOUND
