"""The `title` of a call-ended event (docs/webhooks.md §3): DID rule name, queue callback, duration as H:MM:SS.

title(ended_event, "en")  # "Main line: talk 0:01:05"
"""

from __future__ import annotations

from tcxhooks.v1 import common_pb2, events_pb2

_WORDS = {
    "ru": {
        "talk": "разговор",
        "missed": "пропущен, ожидание",
        "outgoing": "Исходящий звонок",
        "internal": "Внутренний звонок",
        "incoming": "Входящий звонок",
        "not_answered": "без ответа, набор",
        "queue": "очередь",
        "callback": "заказан обратный звонок",
        "no_callback": "без обратного звонка",
        "callback_unknown": "обратный звонок неизвестен",
        "transferred": "переведён",
    },
    "en": {
        "talk": "talk",
        "missed": "missed, waited",
        "outgoing": "Outgoing call",
        "internal": "Internal call",
        "incoming": "Incoming call",
        "not_answered": "not answered, dialled",
        "queue": "queue",
        "callback": "callback ordered",
        "no_callback": "no callback",
        "transferred": "transferred",
        "callback_unknown": "callback unknown",
    },
}


def hms(seconds: int) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def title(event: events_pb2.CallEvent, language: str) -> str:
    words = _WORDS.get(language, _WORDS["ru"])
    if event.direction == common_pb2.DIRECTION_INCOMING:
        head = event.did_name or event.did or words["incoming"]
    elif event.direction == common_pb2.DIRECTION_OUTGOING:
        head = words["outgoing"]
    else:
        head = words["internal"]
    parts: list[str] = []
    if event.finish_type == common_pb2.FINISH_TYPE_OK:
        parts.append(f"{words['talk']} {hms(event.duration_seconds)}")
        if event.transfer:
            parts.append(words["transferred"])
    else:
        if event.has_callback and event.user == event.queue and event.queue:
            said = (
                "callback"
                if event.callback
                else "callback_unknown"
                if event.callback_state == common_pb2.CALLBACK_STATE_UNKNOWN
                else "no_callback"
            )
            parts.append(f"{words['queue']} {event.queue}, {words[said]}")
        missed = words["not_answered"] if event.direction == common_pb2.DIRECTION_OUTGOING else words["missed"]
        parts.append(f"{missed} {hms(event.ring_seconds)}")
    return f"{head}: " + ", ".join(parts)
