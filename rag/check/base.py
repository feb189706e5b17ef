"""What every judge shares: the :class:`Support` finding, the :class:`Judge` protocol, and quotes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rag.lang.citations import MARKER
from rag.lang.roles import strip_label
from rag.lang.sentences import sentence_spans

_MIN_QUOTE_CHARS = 20  # shorter "quotes" ("It rose.") match anywhere by chance
_MAX_QUOTED_SENTENCES = 3


@dataclass
class Support:
    """A judge's finding for one claim against some passages."""

    score: float  # 0-1: how well the passages support the claim
    passage: int  # index of the passage holding the best quote
    span: tuple[int, int]  # character span of the best quote in that passage

    def supported(self, threshold: float) -> bool:
        return self.score >= threshold


class Judge(Protocol):
    """Scores whether passages support a claim."""

    name: str
    threshold: float

    def support(self, claim: str, passages: Sequence[str]) -> Support: ...


def sentence_units(passages: Sequence[str]) -> list[tuple[int, int, int]]:
    """Every sentence of the passages as ``(passage, start, end)``: what a judge weighs one by one."""
    return [(p, a, b) for p, text in enumerate(passages) for a, b in sentence_spans(text)]


def _normal(text: str) -> str:
    return " ".join(MARKER.sub(" ", text).lower().split())


def quote_location(claim: str, passages: Sequence[str]) -> tuple[int, tuple[int, int]] | None:
    """Where the claim is a passage's own sentence, or up to three consecutive ones, word for word
    (citation markers, section labels, case, spacing and end punctuation aside): the passage and the
    sentences' span; None otherwise. A fragment does not count: "no evidence that X" does not quote X.
    """
    needle = _normal(claim).rstrip(" .;:!?")
    if len(needle) < _MIN_QUOTE_CHARS:
        return None
    for p, text in enumerate(passages):
        if needle not in _normal(text):
            continue
        spans = sentence_spans(text)
        for i, (a, _) in enumerate(spans):
            for _, b in spans[i : i + _MAX_QUOTED_SENTENCES]:
                if _normal(strip_label(text[a:b])).rstrip(" .;:!?") == needle:
                    return p, (a, b)
    return None


def quoted(claim: str, passages: Sequence[str]) -> bool:
    """Whether the claim (citation markers, case and spacing aside) appears word for word in a passage."""
    return quote_location(claim, passages) is not None
