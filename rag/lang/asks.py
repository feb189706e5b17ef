"""What a question asks, and whether a paper tests it.

A research question or claim relates two things — an exposure or intervention and an outcome
("Can *vitamin D* reverse *osteoporosis*?", "*ALDH1 expression* is associated with *poorer
prognosis*"). A paper *tests* the question when it reports on that pair; one that shares only one
side (vitamin D and renal bone disease) addresses something adjacent, however close its words. The
consensus meter lets only the papers that test a question vote.

:func:`sides` splits the question's topic words at its relation word (the verb between the two:
"reverse", "associated", "reduce"; failing one, the middle of its topic words);
:func:`pair_features` measures how each side is covered by a paper's sentences, above all by one
sentence at once. Which mix of these means "tests" is fitted (``python -m evals.decision fit``).

:func:`question_form` tells a question from a claim (the meter weighs them with their own thresholds,
retrieval maps their vectors with their own adapters). :func:`answer_shape` is the phrase a counting
question's answer takes ("How many participants …?" → "24 participants"), which retrieval favours.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import numpy as np

from rag.lang.lexicon import FUNCTION_WORDS, WORD, is_topic_word, overlap, stem, topic_stems

# The words that relate the two sides: verbs of effect and association first, then the links of
# being and modality. The first one (after the question's own auxiliary) with topic words on both
# sides is the split.
_VERB = re.compile(
    r"(?:associat|correlat|relat(?:e|es|ed|ing)\b|link|affect|influenc|impact|caus|predict|revers|treat|cure|prevent|"
    r"protect|reduc|increas|decreas|lower|rais|improv|benefit|modif|chang|alter|induc|inhibit|suppress|promot|"
    r"regulat|contribut|lead|led\b|result|determin|depend|differ|exacerbat|worsen|enhanc|impair|play|show|exhibit|"
    r"activat|block|mediat|requir|need|help|useful|reliabl|effective|efficac|superior|inferior|equal|equivalent|"
    r"safe|accurat|better|worse|outperform|replac|bind|interact|driv|trigger)\w*",
    re.IGNORECASE,
)
_LINK = re.compile(r"is|are|was|were|has|have|had|can|may|might|could|should|does|do|did|will", re.IGNORECASE)
_ASKING = frozenset("can could does do did is are was were will would should may might has have".split())

PAIR_FEATURES = [
    "pair_in_sentence",  # both sides in one sentence (min of the two coverages, best sentence)
    "pair_in_finding",  # the same, among result and conclusion sentences
    "pair_in_paper",  # both sides somewhere in the paper
    "exposure_best",  # the first side's best coverage by one sentence
    "outcome_best",  # the second side's
    "question_in_sentence",  # all the question's topic words, best sentence
    "relation_in_pair",  # pair_in_sentence among sentences that use the question's relation verb ("reverse")
]


def _split(question: str) -> tuple[list[str], list[str], str]:
    """The question's words before and after its relation word (the middle of its topic words failing
    one), and the relation word ("" when it split at none)."""
    words = WORD.findall(question)
    start = 1 if words and words[0].lower() in _ASKING else 0
    for pattern in (_VERB, _LINK):
        for i in range(start + 1, len(words)):
            before, after = words[start:i], words[i + 1 :]
            if pattern.fullmatch(words[i]) and any(map(is_topic_word, before)) and any(map(is_topic_word, after)):
                return before, after, words[i]
    topical = [i for i, w in enumerate(words) if is_topic_word(w)]
    cut = topical[(len(topical) + 1) // 2] if len(topical) > 1 else len(words)
    return words[start:cut], words[cut:], ""


def relation(question: str) -> str:
    """The stem of the question's relation verb ("revers" in "Can vitamin D reverse osteoporosis?"),
    "" when it relates its sides by a mere link ("is", "can") or none."""
    word = _split(question)[2]
    return _root(word) if word and _VERB.fullmatch(word) else ""


def sides(question: str) -> tuple[set[str], set[str]]:
    """The question's topic stems before and after its relation word.

    >>> sides("Can vitamin D reverse osteoporosis?")
    ({'vitamin'}, {'osteoporosi'})
    """
    before, after, _ = _split(question)
    left = {stem(w) for w in before if is_topic_word(w)}
    return left, {stem(w) for w in after if is_topic_word(w)} - left


def pair_phrase(question: str) -> str:
    """The two things the question relates, in its words ("vitamin D and osteoporosis"); empty when
    it has no relation word to split at."""
    before, after, related = _split(question)

    def phrase(words: list[str]) -> str:  # without the function and relation words around it
        def linking(w: str) -> bool:
            return w.lower() in FUNCTION_WORDS or bool(_VERB.fullmatch(w) or _LINK.fullmatch(w))

        while words and linking(words[0]):
            words = words[1:]
        while words and linking(words[-1]):
            words = words[:-1]
        return " ".join(words)

    left, right = phrase(before), phrase(after)
    return f"{left} and {right}" if related and left and right else ""


def pair_features(question: str, sentences: Sequence[tuple[str, str]]) -> np.ndarray:
    """:data:`PAIR_FEATURES` of a paper's ``(text, role)`` sentences toward ``question``."""
    if not sentences:
        return np.zeros(len(PAIR_FEATURES))
    left, right = sides(question)
    whole = left | right
    verb = relation(question)
    stems = [topic_stems(t) for t, _ in sentences]

    def cover(side: set[str], s: set[str]) -> float:
        return overlap(side, s, empty=overlap(whole, s))  # a one-sided question: the whole question stands in

    pair = [min(cover(left, s), cover(right, s)) for s in stems]
    findings = [p for p, (_, role) in zip(pair, sentences, strict=True) if role in ("result", "conclusion")]
    related = [p for p, (t, _) in zip(pair, sentences, strict=True) if not verb or verb in _roots(t)]
    paper = set().union(*stems)
    return np.array(
        [
            max(pair),
            max(findings, default=0.0),
            min(cover(left, paper), cover(right, paper)),
            max(cover(left, s) for s in stems),
            max(cover(right, s) for s in stems),
            max(overlap(whole, s) for s in stems),
            max(related, default=0.0),
        ]
    )


def _root(word: str) -> str:
    """A verb's stem without its final e, so reverse / reversed / reverses meet at "revers"."""
    return stem(word).removesuffix("e")


def _roots(text: str) -> set[str]:
    return {_root(w) for w in WORD.findall(text)}


_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|thousands?|millions?|billions?"
)
_NUMBER = rf"(?:\d[\d,.]*\s?[kKMB]?|{_NUMBER_WORDS})"  # 24, 40,000, 81.1M, 35k, ten
_HOW_MANY = re.compile(r"\bhow many\s+((?:[\w-]+\s+){0,4})", re.IGNORECASE)
_WHAT_N = re.compile(rf"\b(?:what|which)\s+(?:are\s+the\s+|were\s+the\s+)?({_NUMBER_WORDS}|\d+)\s+", re.IGNORECASE)
_COUNTED_WORDS = 4  # "how many fine-grained academic queries": the counted noun comes within four words
_BETWEEN = 3  # words a number and its noun may have between them: "40,000 source documents", "24 paid participants"


Form = Literal["question", "claim"]
FORMS: tuple[Form, ...] = ("question", "claim")


def question_form(text: str) -> Form:
    """``question`` ("Does X reduce Y?") or ``claim`` (a statement to check, "X reduces Y.").

    >>> question_form("Can vitamin D reverse osteoporosis?"), question_form("Vitamin D reverses osteoporosis.")
    ('question', 'claim')
    """
    return "question" if text.rstrip().endswith("?") else "claim"


def answer_shape(question: str) -> re.Pattern[str] | None:
    """The phrase an answer to a counting question takes, as a pattern, or None for other questions.

    "How many participants took part?" → a number before "participants" ("24 participants", "ten
    participants"); "What three components …?" → "three" before "components".

    >>> bool(answer_shape("How many source documents does it hold?").search("about 40,000 source documents"))
    True
    >>> answer_shape("Does vitamin D reverse osteoporosis?") is None
    True
    """
    if count := _HOW_MANY.search(question):
        noun, number = _counted_noun(count.group(1)), _NUMBER
    elif listed := _WHAT_N.search(question):
        noun, number = _counted_noun(question[listed.end() :]), re.escape(listed.group(1))
    else:
        return None
    if not noun:
        return None
    return re.compile(rf"(?<![\w.]){number}\s+(?:[\w-]+\s+){{0,{_BETWEEN}}}?{re.escape(stem(noun))}\w*", re.IGNORECASE)


def _counted_noun(text: str) -> str:
    """The noun counted in the words after "how many" / "what three": the first plural-looking one before a
    function word ("fine-grained academic *queries* does"; "*supernovae* from the"), else the first."""
    phrase = []
    for word in WORD.findall(text)[:_COUNTED_WORDS]:
        if word.lower() in FUNCTION_WORDS:
            break
        phrase.append(word)
    plural = [w for w in phrase if w.lower().endswith(("s", "ae", "ia", "ta"))]
    return (plural or phrase or [""])[0]
