"""A small extractive summary (TextRank) for Russian and English text, with no dependency.

Sentences are split by punctuation, words reduced to 5-letter prefixes ("stems") minus stop
words, sentences linked by word overlap, ranked by PageRank; the best few are kept in their
original order.
"""

from __future__ import annotations

import math
import re

_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "did",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "him",
        "his",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yes",
        "ok",
        "okay",
        "hello",
        "hi",
        "please",
        "thank",
        "thanks",
        "um",
        "uh",
        "а",
        "без",
        "бы",
        "был",
        "была",
        "были",
        "было",
        "быть",
        "в",
        "вам",
        "вас",
        "весь",
        "во",
        "вот",
        "все",
        "всё",
        "вы",
        "где",
        "да",
        "даже",
        "для",
        "до",
        "его",
        "ее",
        "её",
        "ей",
        "ему",
        "если",
        "есть",
        "еще",
        "ещё",
        "же",
        "за",
        "здесь",
        "и",
        "из",
        "или",
        "им",
        "их",
        "к",
        "как",
        "какой",
        "когда",
        "кто",
        "ли",
        "либо",
        "мне",
        "мной",
        "мы",
        "на",
        "над",
        "нам",
        "нас",
        "не",
        "него",
        "нет",
        "ни",
        "них",
        "но",
        "ну",
        "о",
        "об",
        "он",
        "она",
        "они",
        "оно",
        "от",
        "по",
        "под",
        "при",
        "с",
        "со",
        "так",
        "также",
        "там",
        "те",
        "тем",
        "то",
        "того",
        "тоже",
        "той",
        "только",
        "том",
        "ты",
        "у",
        "уже",
        "хорошо",
        "чем",
        "что",
        "чтобы",
        "эта",
        "эти",
        "это",
        "этот",
        "я",
        "алло",
        "здравствуйте",
        "спасибо",
        "пожалуйста",
        "добрый",
        "день",
    ]
)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and _WORD.search(s)]


def _stems(sentence: str) -> set[str]:
    return {w[:5] for w in (m.group(0).lower() for m in _WORD.finditer(sentence)) if w not in STOP_WORDS and len(w) > 1}


def summarize(text: str, count: int = 3, iterations: int = 50, damping: float = 0.85) -> str:
    """The `count` most central sentences of `text`, in their original order."""
    found = sentences(text)
    if len(found) <= count:
        return " ".join(found)
    stems = [_stems(s) for s in found]
    n = len(found)
    weights = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            overlap = len(stems[i] & stems[j])
            if overlap and len(stems[i]) > 1 and len(stems[j]) > 1:
                weights[i][j] = weights[j][i] = overlap / (math.log(len(stems[i])) + math.log(len(stems[j])))
    totals = [sum(row) for row in weights]
    scores = [1.0 / n] * n
    for _ in range(iterations):
        scores = [
            (1 - damping) / n
            + damping * sum(weights[j][i] / totals[j] * scores[j] for j in range(n) if totals[j] and weights[j][i])
            for i in range(n)
        ]
    best = sorted(range(n), key=lambda i: (-scores[i], i))[:count]
    return " ".join(found[i] for i in sorted(best))
