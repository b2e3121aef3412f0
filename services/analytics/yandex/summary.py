"""A few-sentence summary of a transcript with YandexGPT (Foundation Models completion, docs/yandex.md §3).

A CONTENT_FILTER answer is permanent for that transcript: the extractive TextRank summary is used.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from ..config import AnalyticsConfig
from ..errors import transient
from ..textrank import summarize as extractive
from .http import request

log = logging.getLogger(__name__)

MAX_TRANSCRIPT_CHARS = 60_000
PROMPTS = {
    "ru": (
        "Ты помощник отдела продаж и поддержки. Ниже расшифровка телефонного разговора. "
        "Кратко перескажи его в 2–4 предложениях на русском языке: кто звонил, зачем, о чём договорились "
        "и какие следующие шаги. Пиши только сам пересказ, без вступлений и списков."
    ),
    "en": (
        "You assist a sales and support team. Below is the transcript of a phone call. "
        "Summarise it in 2-4 sentences in English: who called, why, what was agreed and the next steps. "
        "Write only the summary, no preamble and no lists."
    ),
}
OTHER = (
    "Below is the transcript of a phone call. Summarise it in 2-4 sentences, written in the language "
    "of the conversation ({language}): who called, why, what was agreed and the next steps. "
    "Write only the summary."
)


def model_uri(config: AnalyticsConfig) -> str:
    model = config.summary_model
    return f"gpt://{config.folder_id}/{model}" + ("" if "/" in model else "/latest")


def prompt(language: str) -> str:
    return PROMPTS.get(language.split("-")[0].lower(), OTHER.format(language=language))


class YandexGPT:
    def __init__(self, config: AnalyticsConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client

    def request_body(self, transcript: str, language: str) -> dict[str, Any]:
        return {
            "modelUri": model_uri(self.config),
            "completionOptions": {"stream": False, "temperature": 0.2, "maxTokens": "400"},
            "messages": [
                {"role": "system", "text": prompt(language)},
                {"role": "user", "text": transcript[:MAX_TRANSCRIPT_CHARS]},
            ],
        }

    async def summarize(self, transcript: str, plain_text: str, language: str) -> str:
        """The model's summary of `transcript`; TextRank of `plain_text` if the model refuses the content."""
        if not transcript.strip():
            return ""
        response = await request(
            self.client,
            self.config,
            "POST",
            f"{self.config.llm_url}/foundationModels/v1/completion",
            "YandexGPT completion",
            "llm_completion",
            json=self.request_body(transcript, language),
        )
        try:
            body = response.json()
            alternative = body["result"]["alternatives"][0]
            status = str(alternative.get("status", ""))
            text = str(alternative.get("message", {}).get("text", "")).strip()
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
            raise transient(
                "YandexGPT completion answer has no result.alternatives[0]", "bad_response", max_attempts=3
            ) from None
        if status == "ALTERNATIVE_STATUS_CONTENT_FILTER" or not text:
            log.info("YandexGPT gave no summary (%s); using the extractive summary", status or "empty text")
            return extractive(plain_text)
        return text
