"""The offline judge (``offline-v3``): relevance × polarity, two fitted logistic models.

*Relevance* — embedding similarity of the claim to the passage's best sentences, a BERTScore-style
alignment of the claim's word pieces to the passage's, content-word coverage, numbers that must
appear in the cited text — says whether the passage is about what the claim says. *Polarity* — the
stance cues of :mod:`rag.lang.findings` (effect vs. null-result wording, p-values, negation and
direction against the claim, hedging, and the poles the claim takes that its likeliest rationale
sentences do not) — says whether it agrees. A claim quoted word for word from a passage is supported
outright. The models and the threshold are fitted on SciFact's train split (``python -m
evals.checker fit``) and ship in ``judge_offline_v3.json`` (:class:`rag.params.JudgeParams`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.check.base import Support, quote_location, sentence_units
from rag.lang.findings import NEGATION, STANCE_FEATURES, direction, pole_clash, read_passages
from rag.lang.lexicon import FUNCTION_WORDS, TERM, WORD, content_stems, overlap, stem
from rag.params import JUDGE_FILE, JudgeParams, bundled
from rag.types import TokenEmbedder

_NUMBER = re.compile(
    r"(?<![A-Za-z])(\d+(?:[.,]\d+)?)\s?(%|percent|mg|g|kg|ml|µg|ug|iu|mmol|nmol|fold|x)?", re.IGNORECASE
)
FEATURES = [  # the relevance model's; the last two (negation, direction) also feed the polarity model
    "max_cos",
    "top2_cos",
    "coverage",
    "window_coverage",
    "specific_coverage",
    "bigram_coverage",
    "sentence_coverage",
    "missing_numbers",
    "token_recall",
    "token_recall_sentence",
    "token_min",
    "negation_mismatch",
    "direction_mismatch",
]
CLASH_FEATURES = ["poles_unmatched", "poles_unmatched_min", "poles_opposed", "poles_opposed_max", "claim_polar"]
POLARITY_FEATURES = [*STANCE_FEATURES, "negation_mismatch", "direction_mismatch", *CLASH_FEATURES]
_RATIONALE = 3  # sentences read as the claim's likely rationale


def specific_terms(text: str) -> set[str]:
    """Terms that name specific things (genes, drugs, doses, long technical terms): the hardest to share by chance."""
    words = TERM.findall(text)
    return {
        stem(w)
        for i, w in enumerate(words)
        if w.lower() not in FUNCTION_WORDS
        and (any(c.isdigit() for c in w) or "-" in w or len(w) >= 9 or (i > 0 and any(c.isupper() for c in w)))
    }


def content_bigrams(text: str) -> set[tuple[str, str]]:
    stems = [stem(w) for w in WORD.findall(text) if w.lower() not in FUNCTION_WORDS]
    return set(itertools.pairwise(stems))


def numbers(text: str) -> set[str]:
    return {m.group(1).replace(",", ".").rstrip("0").rstrip(".") or "0" for m in _NUMBER.finditer(text)}


@dataclass
class Reading:
    """What the offline judge reads off a claim and its passages."""

    relevance: np.ndarray  # FEATURES
    clash: np.ndarray  # CLASH_FEATURES: claim poles the likeliest rationale sentences do not take
    passage: int  # the passage holding the sentence most like the claim
    span: tuple[int, int]  # that sentence's character span


class OfflineJudge:
    """Relevance (similarity, coverage, token alignment, numbers) × polarity (stance cues, pole clashes).

    >>> from rag.embed import CachedEmbedder, LocalEmbedder
    >>> judge = OfflineJudge(CachedEmbedder(LocalEmbedder()))
    >>> judge.support("Vitamin D lowers fracture risk.", ["Vitamin D reduced fractures by 20%."]).score > 0
    True
    """

    def __init__(
        self, embedder: TokenEmbedder, params: JudgeParams | None = None, threshold: float | None = None
    ) -> None:
        self.embedder = embedder
        params = params or bundled(JudgeParams, JUDGE_FILE)
        self.name = params.version
        self.relevance = params.relevance.check("Judge relevance", FEATURES)
        self.polarity = params.polarity.check("Judge polarity", POLARITY_FEATURES) if params.polarity else None
        self.threshold = params.threshold if threshold is None else threshold

    def support(self, claim: str, passages: Sequence[str]) -> Support:
        found = quote_location(claim, passages)
        if found is not None:  # a passage entails its own words: nothing to weigh (and nothing to embed)
            return Support(1.0, *found)
        reading = self.features(claim, passages)
        score = self.relevance.probability(reading.relevance)
        if self.polarity is not None:
            score *= self.polarity.probability(self.polarity_features(claim, passages, reading))
        return Support(score, reading.passage, reading.span)

    def polarity_features(self, claim: str, passages: Sequence[str], reading: Reading) -> np.ndarray:
        """Stance cues of the passages toward the claim, the negation/direction flags and the pole clashes."""
        cues = read_passages(claim, passages, self.embedder)
        return np.concatenate([cues.features, reading.relevance[FEATURES.index("negation_mismatch") :], reading.clash])

    def features(self, claim: str, passages: Sequence[str]) -> Reading:
        units = sentence_units(passages)
        if not units:
            empty = np.zeros(len(FEATURES))
            empty[FEATURES.index("missing_numbers")] = 1.0
            return Reading(empty, np.zeros(len(CLASH_FEATURES)), 0, (0, 0))
        sentences = [passages[p][a:b] for p, a, b in units]
        alignment = self._token_alignment(claim, sentences)  # first: its model pass also caches the vectors
        vecs = self.embedder.embed([claim, *sentences])
        sims = vecs[1:] @ vecs[0]
        order = np.argsort(-sims)
        best = int(order[0])
        p_best = units[best][0]
        window = [sentences[i] for i in range(max(0, best - 1), min(len(units), best + 2)) if units[i][0] == p_best]
        claim_terms = content_stems(claim)
        sentence_terms = [content_stems(t) for t in sentences]
        lexical = _lexical(claim, claim_terms, passages, sentence_terms, " ".join(window))
        shared = np.array([overlap(claim_terms, terms) for terms in sentence_terms])
        # polarity against the sentences most like the claim in meaning and in words (the likely rationale)
        rationale = [sentences[int(i)] for i in np.argsort(-(sims + shared))[:_RATIONALE]]
        relevance = np.array(
            [
                float(sims[best]),
                float(np.mean(sims[order[:2]])),
                *lexical,
                float(shared.max()),
                *_numbers_missing(claim, sentences),
                *alignment,
                *_flags(claim, rationale[0]),
            ]
        )
        p, a, b = units[best]
        return Reading(relevance, _clash(claim, rationale), p, (a, b))

    def _token_alignment(self, claim: str, sentences: list[str]) -> tuple[float, float, float]:
        """BERTScore-style recall: how closely each content word piece of the claim is matched, in context,
        by some word piece of the passages (mean, best single sentence, worst-matched piece)."""
        (pieces, c), *rest = self.embedder.embed_tokens([claim, *sentences])
        keep = [
            i
            for i, t in enumerate(pieces)
            if t.isalnum() and t.lower() not in FUNCTION_WORDS and not t.startswith("##")
        ]
        c = c[keep]
        rows = [m for _, m in rest if len(m)]
        if not keep or not rows:  # a claim of stopwords only says nothing a passage could match
            return 0.0, 0.0, 0.0
        per_sentence = [(c @ m.T).max(axis=1) for m in rows]
        overall = np.max(per_sentence, axis=0)
        return float(overall.mean()), max(float(x.mean()) for x in per_sentence), float(overall.min())


def _lexical(
    claim: str, claim_terms: set[str], passages: Sequence[str], sentence_terms: list[set[str]], window: str
) -> tuple[float, ...]:
    """Coverage of the claim's content words (all passages, the best sentence's window), specific terms, bigrams."""
    all_terms: set[str] = set().union(*sentence_terms)
    joined = " ".join(passages)
    return (
        overlap(claim_terms, all_terms),
        overlap(claim_terms, content_stems(window)),
        overlap(specific_terms(claim), specific_terms(joined), empty=1.0),  # nothing specific: nothing to miss
        overlap(content_bigrams(claim), content_bigrams(joined), empty=1.0),
    )


def _numbers_missing(claim: str, sentences: list[str]) -> tuple[float]:
    """Share of the claim's numbers that no cited sentence states."""
    claimed = numbers(claim)
    stated: set[str] = set().union(*(numbers(s) for s in sentences))
    return (len(claimed - stated) / len(claimed) if claimed else 0.0,)


def _flags(claim: str, top: str) -> tuple[float, float]:
    """Negation mismatch and opposed direction between the claim and its likeliest rationale sentence."""
    negation = float(bool(NEGATION.search(top)) != bool(NEGATION.search(claim)))
    d_claim = direction(claim)
    return negation, float(d_claim != 0 and direction(top) == -d_claim)


def _clash(claim: str, rationale: list[str]) -> np.ndarray:
    """CLASH_FEATURES: the claim's poles its rationale sentences never take, or take the opposite of."""
    clashes = np.array([pole_clash(claim, s) for s in rationale], dtype=float)
    n_poles = max(clashes[0, 2], 1.0)
    return np.array(
        [
            clashes[0, 0] / n_poles,
            clashes[:, 0].min() / n_poles,
            clashes[0, 1] / n_poles,
            clashes[:, 1].max() / n_poles,
            float(clashes[0, 2] > 0),
        ]
    )
