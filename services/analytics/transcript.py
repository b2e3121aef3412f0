"""A transcript as segments per channel, and how it becomes the webhook's text and segments."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tcxhooks.v1 import events_pb2

MONO = -1


@dataclass(frozen=True)
class Segment:
    """One recognised phrase; `channel` is the stereo channel index (0, 1) or MONO."""

    channel: int
    start: float
    end: float
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "start": self.start, "end": self.end, "text": self.text}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Segment:
        return cls(int(data["channel"]), float(data["start"]), float(data["end"]), str(data["text"]))


def shifted(segments: Iterable[Segment], offset: float) -> list[Segment]:
    return [Segment(s.channel, s.start + offset, s.end + offset, s.text) for s in segments]


def ordered(segments: Iterable[Segment]) -> list[Segment]:
    return sorted((s for s in segments if s.text.strip()), key=lambda s: (s.start, s.channel))


def speaker(channel: int, names: Sequence[str]) -> str:
    if channel == MONO:
        return "mono"
    return names[channel] if channel < len(names) else f"channel{channel}"


def render_text(segments: Sequence[Segment], names: Sequence[str]) -> str:
    """One line per phrase; with two channels each line starts with the speaker (`operator: …`)."""
    stereo = any(s.channel != MONO for s in segments)
    lines = []
    for seg in ordered(segments):
        text = " ".join(seg.text.split())
        lines.append(f"{speaker(seg.channel, names)}: {text}" if stereo else text)
    return "\n".join(lines)


def to_proto(segments: Sequence[Segment], names: Sequence[str]) -> list[events_pb2.TranscriptSegment]:
    return [
        events_pb2.TranscriptSegment(
            channel=speaker(s.channel, names),
            start_seconds=round(s.start, 3),
            end_seconds=round(s.end, 3),
            text=" ".join(s.text.split()),
        )
        for s in ordered(segments)
    ]
