"""The texts the amoCRM adapter writes into the account, in the [crm] section's `language`.

    texts("ru").task(phone="+7916…", key="251125184500_698-0")    # "Перезвонить +7916…: пропущенный звонок …"

Each text names the leg id: after a lost answer the adapter finds its own task or note by it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Texts:
    missed_lead: str  # the Unsorted lead of a missed call
    call_lead: str  # the Unsorted lead of an answered call
    task_text: str
    recording_text: str
    call_header: str  # the first line of the summary and transcript note
    summary_label: str
    transcript_label: str

    def lead(self, phone: str, missed: bool) -> str:
        return (self.missed_lead if missed else self.call_lead).format(phone=phone)

    def task(self, phone: str, key: str) -> str:
        return self.task_text.format(phone=phone, key=key)

    def recording(self, key: str, link: str) -> str:
        return self.recording_text.format(key=key, link=link)

    def transcript_note(self, key: str, summary: str, transcript: str) -> str:
        parts = [self.call_header.format(key=key)]
        if summary:
            parts.append(f"{self.summary_label}: {summary}")
        if transcript:
            parts.append(f"{self.transcript_label}:\n{transcript}")
        return "\n\n".join(parts)


TEXTS = {
    "ru": Texts(
        "Пропущенный звонок с {phone}",
        "Звонок с {phone}",
        "Перезвонить {phone}: пропущенный звонок {key}",
        "Запись звонка {key}: {link}",
        "Звонок {key}",
        "Кратко",
        "Расшифровка",
    ),
    "en": Texts(
        "Missed call from {phone}",
        "Call from {phone}",
        "Call back {phone}: missed call {key}",
        "Recording of call {key}: {link}",
        "Call {key}",
        "Summary",
        "Transcript",
    ),
}


def texts(language: str) -> Texts:
    return TEXTS.get(language, TEXTS["ru"])


def is_recording_note(text: str, key: str) -> bool:
    """A note this adapter wrote with the recording link of leg `key` (in any language)."""
    return any(text.startswith(t.recording(key, "")) for t in TEXTS.values())


def is_transcript_note(text: str, key: str) -> bool:
    """A note this adapter wrote with the summary and transcript of leg `key` (in any language)."""
    return any(text.split("\n", 1)[0] == t.call_header.format(key=key) for t in TEXTS.values())
