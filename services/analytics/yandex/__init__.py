"""Yandex Cloud backend: SpeechKit v3 asynchronous recognition and YandexGPT summaries over REST."""
