"""The analytics service's settings: [analytics] (docs/config.md), and the key of [recordings] it reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tcxhooks.platform.config import Missing, Section, Settings, key
from tcxhooks.platform.values import base_url, boolean, choice, comma_list, duration, text, whole


@dataclass(frozen=True)
class AnalyticsConfig(Section):
    """Speech analytics of the recordings: transcript and summary by Yandex SpeechKit and YandexGPT,
    or by an offline engine on this host (docs/yandex.md)."""

    SECTION = "analytics"
    enabled: bool = key("false", boolean, "transcribe and summarise the recordings")
    backend: str = key(
        "yandex", choice("yandex", "offline"), "yandex (SpeechKit and YandexGPT) or offline (an engine on this host)"
    )
    api_key: str = key("", text, "Yandex Cloud API key", secret=True)
    iam_token: str = key("", text, "Yandex IAM token (instead of api_key; it expires within 12 h)", secret=True)
    iam_token_file: str = key(
        "",
        text,
        "a file holding the current Yandex IAM token, kept fresh by someone else "
        "and re-read when it changes (instead of api_key)",
    )
    folder_id: str = key("", text, "Yandex Cloud folder id")
    language: str = key(
        "auto", text, "recognition language, e.g. ru-RU, en-US; auto: the likelier of Russian and English, detected"
    )
    summary_model: str = key("yandexgpt-lite", text, "YandexGPT model")
    stt_url: str = key("https://stt.api.cloud.yandex.net", base_url, "SpeechKit base URL")
    llm_url: str = key("https://llm.api.cloud.yandex.net", base_url, "Foundation Models base URL")
    operation_url: str = key("https://operation.api.cloud.yandex.net", base_url, "Operations base URL")
    concurrency: int = key("2", whole(1, 64), "jobs run at once")
    deadline: float = key("24h", duration, "give up on a job this long after it was submitted")
    channels: tuple[str, ...] = key(
        "operator,client", comma_list, "names of the speakers on the stereo channels, left first"
    )


@dataclass(frozen=True)
class RecordingsRetention(Section):
    """[recordings] as the analytics service reads it (the media service owns the section): how long
    transcripts of a recording are kept."""

    SECTION = "recordings"
    OWNED = False
    retention_days: int = key("90", whole(1))


@dataclass(frozen=True)
class AnalyticsSettings(Settings):
    analytics: AnalyticsConfig
    recordings: RecordingsRetention

    def missing(self) -> Iterator[Missing]:
        a = self.analytics
        if not (a.enabled and a.backend == "yandex"):
            return
        if not (a.api_key or a.iam_token or a.iam_token_file):
            yield Missing(
                "analytics", "api_key", "a Yandex Cloud API key with backend = yandex (or iam_token, or iam_token_file)"
            )
        if not a.folder_id:
            yield Missing("analytics", "folder_id", "the Yandex Cloud folder id")
