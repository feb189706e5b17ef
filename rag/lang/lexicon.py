"""Words: the word and term patterns, stop words, the stemmer and the title-caser.

One copy of each, for every stage. (The BM25 index has its own Snowball stemmer and stop list,
inside :mod:`rag.retrieve`: it is an index format, not a reader of sentences.)
"""

from __future__ import annotations

import re
from typing import Any

WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)?")
"""A word (letters, digits and hyphens after a letter) or a number."""
TERM = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
"""A technical term, which may start with a digit: ``5-HT``, ``25-hydroxyvitamin``, ``IL-6``."""

FUNCTION_WORDS = frozenset(
    """a an the and or of in on to for with by at from as is are was were be been being that this these those
    it its their there which who whom what when where how than then also may might can could would should will
    has have had do does did not no into over under between among via per both each such other more most less
    least very""".split()
)
"""Words that carry no content: left out of term overlap and coverage."""

UNINFORMATIVE = FUNCTION_WORDS | frozenset(
    """about above after again against all am any because before below but doing down during few further having
    he her here hers him his i if itself just me my nor now off once only our ours out own same she so some
    theirs them they through too until up we while why with you your yours must shall using used use within
    without however therefore thus whether either based study studies patients patient results result data
    analysis analyses group groups compared associated significant significantly found showed show shows shown
    reported report including included include total respectively mean median versus vs et al fig one two three
    four five high higher low lower increase increased decrease decreased effect effects level levels risk years
    year age aged""".split()
)
"""Function words plus the words every abstract uses ("patients", "significant", "results"): what a
sentence's *topic* is never about (relevance to a question, naming a theme)."""

_MIN_STEM = 3  # "bias" → "bia", but "gas" stays "gas"
_MIN_WORD = 3  # letters a content word needs: "of", "mg" and "p" say nothing of a topic
_SUFFIXES = ("ational", "ations", "ation", "ments", "ment", "ness", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s")
_SMALL_WORDS = frozenset("a an the and or of in on to for with by at vs from as".split())
_QUESTION_WORDS = frozenset("can does do is are how what which why when should will could who".split())


def stem(word: str) -> str:
    """A light suffix stripper (lower-cased): ``"reductions"`` → ``"reduction"``, ``"increased"`` → ``"increas"``.

    >>> [stem(w) for w in ("Reduced", "markings", "bias")]
    ['reduc', 'mark', 'bia']
    """
    w = word.lower()
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= _MIN_STEM:
            return w[: -len(suffix)]
    return w


def content_stems(text: str) -> set[str]:
    """Stems of the words of ``text`` that carry content (numbers included)."""
    return {
        stem(w) for w in WORD.findall(text) if w.lower() not in FUNCTION_WORDS and (len(w) >= _MIN_WORD or w.isdigit())
    }


def overlap(part: set[Any], whole: set[Any], empty: float = 0.0) -> float:
    """The share of ``part`` found in ``whole`` (of a claim's terms, those a passage has); ``empty`` when ``part`` is empty."""
    return len(part & whole) / len(part) if part else empty


def is_topic_word(word: str) -> bool:
    """Whether a word can say what a sentence is about: a word of three letters or more, not uninformative."""
    return len(word) >= _MIN_WORD and word[0].isalpha() and word.lower() not in UNINFORMATIVE


def topic_stems(text: str) -> set[str]:
    """Stems of the topic words of ``text``."""
    return {stem(w) for w in WORD.findall(text) if is_topic_word(w)}


def _as_written(word: str) -> bool:
    return word.isupper() or any(c.isdigit() for c in word) or any(c.isupper() for c in word[1:])


def title_word(word: str) -> str:
    """A word for a heading: acronyms, gene names and doses as written (``BMD``, ``IL-6``, ``mRNA``), else capitalised."""
    return word if _as_written(word) else word[:1].upper() + word[1:]


def title_from_question(question: str) -> str:
    """A headline from the question: 'can vitamin d reverse osteoporosis' → 'Can Vitamin D Reverse Osteoporosis?'."""
    words = question.strip().rstrip("?.! ").split()
    out = [
        w.lower() if i > 0 and not _as_written(w) and w.lower() in _SMALL_WORDS else title_word(w)
        for i, w in enumerate(words)
    ]
    asks = question.strip().endswith("?") or bool(words and words[0].lower() in _QUESTION_WORDS)
    return " ".join(out) + ("?" if asks else "")
