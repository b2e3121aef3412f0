"""Errors of the media service: permanent (bad audio) vs transient (retry the job later)."""
from __future__ import annotations


class MediaError(Exception):
    """Base of every media error; str() is a clear one-line reason."""


class BadAudio(MediaError):
    """A recording that cannot become an mp3 (corrupt, empty, not a wav): skipped, never retried.
    `outcome` labels it in `files_total`."""

    outcome = "bad_audio"


class UnsupportedFormat(BadAudio):
    """A wav in a codec other than linear PCM or G.711 (A-law, µ-law), the formats PBXs record in."""

    outcome = "unsupported_format"


class LegError(MediaError):
    """The leg itself cannot be looked up (bad leg data refused by the source): the job fails."""


class TransientError(MediaError):
    """A peer or the storage failed; the job is retried later with backoff."""


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
