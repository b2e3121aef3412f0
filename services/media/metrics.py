"""Prometheus metrics of the media service (`tcxhooks_media_` prefix), created once at import."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# outcome: ok / short / bad_audio / unsupported_format
FILES = Counter("tcxhooks_media_files_total", "Recording files processed", ["outcome"])
TRANSCODE_SECONDS = Histogram(
    "tcxhooks_media_transcode_seconds",
    "Time to transcode one wav file to mp3",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
AUDIO_SECONDS = Counter("tcxhooks_media_audio_seconds_total", "Seconds of audio transcoded")
STORED_BYTES = Counter("tcxhooks_media_stored_bytes_total", "Bytes of mp3 stored")
JOBS = Counter("tcxhooks_media_jobs_total", "Recording jobs finished", ["outcome"])  # done / no_recording / failed
JOBS_IN_FLIGHT = Gauge("tcxhooks_media_jobs_in_flight", "Recording jobs being processed now")
RETRIES = Counter("tcxhooks_media_job_retries_total", "Job attempts that failed transiently", ["stage"])
LINK_HITS = Counter("tcxhooks_media_link_hits_total", "Download link requests", ["outcome"])
PURGED = Counter("tcxhooks_media_purged_recordings_total", "Recordings deleted by the retention purge")
PURGE_RUNS = Counter("tcxhooks_media_purge_runs_total", "Retention purge runs", ["outcome"])
ERRORS = Counter("tcxhooks_media_errors_total", "Errors by kind", ["kind"])
