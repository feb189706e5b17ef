"""Citation grounding: every cited sentence is checked against the evidence it cites.

For each sentence of a draft: its citations are resolved to evidence chunks; a judge scores
whether the concatenation of the cited chunks supports it (ALCE's citation recall) and whether
each citation is needed (citation precision: a citation is irrelevant when it alone does not
support the sentence and the others do without it); out-of-range citations and citation-worthy
sentences without a citation are flagged. Each verdict comes with the best supporting quote and
its character span in the chunk. Repair (``strict``) re-cites an unsupported sentence to the
evidence that supports it, or removes it; ``flag`` keeps it marked; ``off`` skips the check.

Judges share one interface. The offline default combines what runs here with no model
download, in two logistic models multiplied together: *relevance* (embedding similarity of the
claim to the passage's best sentences, a BERTScore-style alignment of the claim's word pieces to the
passage's, content-word coverage, numbers that must appear in the cited text) says whether the
passage is about what the claim says; *polarity* (the stance cues of :mod:`rag.cues` — effect vs.
null-result wording, p-values, negation and direction against the claim, hedging, and the poles the
claim takes that its likeliest rationale sentences do not) says whether it agrees. A claim quoted
word for word from a passage is supported outright. The models and the threshold are fitted on
SciFact's train split (``python -m evals.checker fit``; ``rag eval --what checker`` refits and
reports on the dev split) and ship in
``judge_offline_v3.json``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.cues import (
    NEGATION,
    STANCE_FEATURES,
    STOP,
    WORD,
    content_stems,
    direction,
    pole_clash,
    read_passages,
    stem,
)
from rag.draft import source_for, strip_label
from rag.embed import TokenEmbedder
from rag.errors import ConfigError, LLMError, ModelError
from rag.llm import ChatModel, Completion, Message
from rag.text import sentence_spans, with_citation
from rag.types import Evidence, GroundingReport, Section, Sentence, SentenceVerdict, Source

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


def specific_terms(text: str) -> set[str]:
    """Words that name specific things (genes, drugs, doses, long technical terms): the hardest to share by chance."""
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9-]*", text)
    return {
        stem(w)
        for i, w in enumerate(words)
        if w.lower() not in STOP
        and (any(c.isdigit() for c in w) or "-" in w or len(w) >= 9 or (i > 0 and any(c.isupper() for c in w)))
    }


def content_bigrams(text: str) -> set[tuple[str, str]]:
    stems = [stem(w) for w in WORD.findall(text) if w.lower() not in STOP]
    return set(itertools.pairwise(stems))


def numbers(text: str) -> set[str]:
    return {m.group(1).replace(",", ".").rstrip("0").rstrip(".") or "0" for m in _NUMBER.finditer(text)}


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


@dataclass
class Reading:
    """What the offline judge reads off a claim and its passages."""

    relevance: np.ndarray  # FEATURES
    clash: np.ndarray  # CLASH_FEATURES: claim poles the likeliest rationale sentences do not take
    passage: int  # the passage holding the sentence most like the claim
    span: tuple[int, int]  # that sentence's character span


class OfflineJudge:
    """Relevance (similarity, coverage, token alignment, numbers) × polarity (stance cues, pole clashes),
    two fitted logistic models.

    >>> from rag.embed import CachedEmbedder, LocalEmbedder
    >>> judge = OfflineJudge(CachedEmbedder(LocalEmbedder()))
    >>> judge.support("Vitamin D lowers fracture risk.", ["Vitamin D reduced fractures by 20%."]).score > 0
    True
    """

    name = "offline-v3"

    def __init__(
        self, embedder: TokenEmbedder, params: dict[str, Any] | None = None, threshold: float | None = None
    ) -> None:
        self.embedder = embedder
        params = params or _load_params()
        relevance, polarity = params.get("relevance", {}), params.get("polarity")
        self.bias = float(relevance.get("bias", 0.0))
        self.weights = np.array([float(relevance.get(f, 0.0)) for f in FEATURES])
        self.polarity = (
            (float(polarity.get("bias", 0.0)), np.array([float(polarity.get(f, 0.0)) for f in POLARITY_FEATURES]))
            if polarity
            else None
        )
        self.threshold = float(threshold if threshold is not None else params.get("threshold", 0.5))

    def polarity_features(self, claim: str, passages: Sequence[str], reading: Reading) -> np.ndarray:
        """Stance cues of the passages toward the claim, the negation/direction flags and the pole clashes."""
        cues = read_passages(claim, passages, self.embedder)
        return np.concatenate([cues.features, reading.relevance[FEATURES.index("negation_mismatch") :], reading.clash])

    def _token_alignment(self, claim: str, sentences: list[str]) -> tuple[float, float, float]:
        """BERTScore-style recall: how closely each content word piece of the claim is matched, in context,
        by some word piece of the passages (mean, best single sentence, worst-matched piece)."""
        (pieces, c), *rest = self.embedder.embed_tokens([claim, *sentences])
        keep = [i for i, t in enumerate(pieces) if t.isalnum() and t.lower() not in STOP and not t.startswith("##")]
        c = c[keep]
        rows = [m for _, m in rest if len(m)]
        if not keep or not rows:  # a claim of stopwords only says nothing a passage could match
            return 0.0, 0.0, 0.0
        per_sentence = [(c @ m.T).max(axis=1) for m in rows]
        overall = np.max(per_sentence, axis=0)
        return float(overall.mean()), max(float(x.mean()) for x in per_sentence), float(overall.min())

    def features(self, claim: str, passages: Sequence[str]) -> Reading:
        units: list[tuple[int, int, int]] = []  # (passage, start, end)
        for p, text in enumerate(passages):
            spans = sentence_spans(text) or ([(0, len(text))] if text.strip() else [])
            units.extend((p, a, b) for a, b in spans)
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
        top2 = float(np.mean(sims[order[:2]]))
        claim_terms = content_stems(claim)
        all_terms: set[str] = set()
        for s in sentences:
            all_terms |= content_stems(s)
        p_best = units[best][0]
        window = " ".join(
            sentences[i] for i in range(max(0, best - 1), min(len(units), best + 2)) if units[i][0] == p_best
        )
        coverage = len(claim_terms & all_terms) / max(len(claim_terms), 1)
        window_coverage = len(claim_terms & content_stems(window)) / max(len(claim_terms), 1)
        joined = " ".join(passages)
        specific = specific_terms(claim)
        specific_coverage = len(specific & specific_terms(joined)) / len(specific) if specific else 1.0
        bigrams = content_bigrams(claim)
        bigram_coverage = len(bigrams & content_bigrams(joined)) / len(bigrams) if bigrams else 1.0
        claim_numbers = numbers(claim)
        text_numbers = set().union(*(numbers(s) for s in sentences)) if sentences else set()
        missing = len(claim_numbers - text_numbers) / len(claim_numbers) if claim_numbers else 0.0
        # polarity against the sentences most like the claim in meaning and in words (the likely rationale)
        overlap = np.array([len(claim_terms & content_stems(t)) / max(len(claim_terms), 1) for t in sentences])
        rationale = [int(i) for i in np.argsort(-(sims + overlap))[:3]]
        top = sentences[rationale[0]]
        claim_neg = bool(NEGATION.search(claim))
        negation = float(bool(NEGATION.search(top)) != claim_neg)
        d_claim = direction(claim)
        opposed = float(d_claim != 0 and direction(top) == -d_claim)
        clashes = np.array([pole_clash(claim, sentences[i]) for i in rationale], dtype=float)
        n_poles = max(clashes[0, 2], 1.0)
        clash = np.array(
            [
                clashes[0, 0] / n_poles,
                clashes[:, 0].min() / n_poles,
                clashes[0, 1] / n_poles,
                clashes[:, 1].max() / n_poles,
                float(clashes[0, 2] > 0),
            ]
        )
        relevance = np.array(
            [
                float(sims[best]),
                top2,
                coverage,
                window_coverage,
                specific_coverage,
                bigram_coverage,
                float(overlap.max()),
                missing,
                *alignment,
                negation,
                opposed,
            ]
        )
        p, a, b = units[best]
        return Reading(relevance, clash, p, (a, b))

    def support(self, claim: str, passages: Sequence[str]) -> Support:
        found = quote_location(claim, passages)
        if found is not None:  # a passage entails its own words: nothing to weigh (and nothing to embed)
            return Support(1.0, *found)
        reading = self.features(claim, passages)
        score = 1.0 / (1.0 + math.exp(-(self.bias + float(self.weights @ reading.relevance))))
        if self.polarity is not None:
            bias, weights = self.polarity
            agree = 1.0 / (1.0 + math.exp(-(bias + float(weights @ self.polarity_features(claim, passages, reading)))))
            score *= agree
        return Support(score, reading.passage, reading.span)


def _normal(text: str) -> str:
    return " ".join(re.sub(r"\[\d+(?:\s*[,;–-]\s*\d+)*\]", " ", text).lower().split())


def quote_location(claim: str, passages: Sequence[str]) -> tuple[int, tuple[int, int]] | None:
    """Where the claim is a passage's own sentence, or up to three consecutive ones, word for word
    (citation markers, section labels, case, spacing and end punctuation aside): the passage and the
    sentences' span; None otherwise. A fragment does not count: "no evidence that X" does not quote X.
    """
    needle = _normal(claim).rstrip(" .;:!?")
    if len(needle) < 20:
        return None
    for p, text in enumerate(passages):
        if needle not in _normal(text):
            continue
        spans = sentence_spans(text)
        for i, (a, _) in enumerate(spans):
            for _, b in spans[i : i + 3]:
                if _normal(strip_label(text[a:b])).rstrip(" .;:!?") == needle:
                    return p, (a, b)
    return None


def quoted(claim: str, passages: Sequence[str]) -> bool:
    """Whether the claim (citation markers, case and spacing aside) appears word for word in a passage."""
    return quote_location(claim, passages) is not None


class LLMJudge:
    """Asks the chat model, in one call per answer, whether each claim is supported by what it cites.

    :meth:`prepare` sends every cited sentence with its passages at once; :meth:`support` answers
    from those verdicts and falls back to the offline judge for anything not asked (re-citing,
    citation-precision probes) or when the model's reply cannot be used.
    """

    threshold = 0.5

    def __init__(self, chat: ChatModel, fallback: Judge) -> None:
        self.chat, self.fallback = chat, fallback
        self.name = f"llm-judge:{chat.name.removeprefix('llm:')}"
        self._verdicts: dict[tuple[str, tuple[str, ...]], Support] = {}
        self.completion: Completion | None = None
        self.error: str | None = None

    async def prepare(self, items: Sequence[tuple[str, Sequence[str]]]) -> None:
        if not items:
            return
        from rag.draft import fence
        from rag.prompts import render

        blocks = []
        for i, (claim, passages) in enumerate(items, start=1):
            cited = "\n".join(f'<source id="P{j}">\n{fence(p)}\n</source>' for j, p in enumerate(passages, start=1))
            blocks.append(f"Claim {i}: {fence(claim)}\n{cited}")
        messages = [
            Message("system", render("judge_system_v1")),
            Message("user", render("judge_user_v1", n_claims=len(items), claims="\n\n".join(blocks))),
        ]
        try:
            self.completion = await self.chat.complete(messages)
            verdicts = _parse_verdicts(self.completion.text, len(items))
        except (LLMError, ValueError) as exc:
            self.error = f"LLM judge unusable, offline judge used instead: {exc}"
            return
        for (claim, passages), (score, quote) in zip(items, verdicts, strict=True):
            p, span = _locate(quote, passages)
            if span is None:  # no exact quote: take the offline judge's best sentence as the receipt
                best = self.fallback.support(claim, passages)
                p, span = best.passage, best.span
            self._verdicts[(claim, tuple(passages))] = Support(score, p, span)

    def support(self, claim: str, passages: Sequence[str]) -> Support:
        found = self._verdicts.get((claim, tuple(passages)))
        if found is not None:
            return found
        fallback = self.fallback.support(claim, passages)
        # rescale so the fallback's own threshold maps onto ours
        score = 0.5 + (fallback.score - self.fallback.threshold) / 2
        return Support(min(max(score, 0.0), 1.0), fallback.passage, fallback.span)


class NLIJudge:
    """An NLI / cross-encoder model in ONNX, loaded from a local folder (nothing is downloaded).

    The folder holds ``model.onnx``, its ``tokenizer.json`` and a ``config.json`` whose ``id2label``
    names an entailment class (a single-logit model is read as a support probability). Each
    sentence of the cited passages is a premise for the claim; the best entailment wins.
    """

    def __init__(self, folder: Path, threshold: float = 0.5, max_length: int = 512) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        files = {name: folder / name for name in ("model.onnx", "tokenizer.json", "config.json")}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise ConfigError(f"NLI judge folder {folder} lacks {', '.join(missing)}.")
        self.name = f"nli:{folder.name}"
        self.threshold = threshold
        self.tokenizer = Tokenizer.from_file(str(files["tokenizer.json"]))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        try:
            self.session = ort.InferenceSession(str(files["model.onnx"]), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"Cannot load {files['model.onnx']}: {exc}") from exc
        labels = json.loads(files["config.json"].read_text()).get("id2label", {})
        entail = [int(i) for i, name in labels.items() if "entail" in str(name).lower()]
        self.entail_index = entail[0] if entail else None
        self.inputs = {i.name for i in self.session.get_inputs()}

    def _probabilities(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(pairs)
        width = max(len(e.ids) for e in encodings)
        feeds: dict[str, np.ndarray] = {}
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
            types[row, : len(e.type_ids)] = e.type_ids
        for name, value in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types)):
            if name in self.inputs:
                feeds[name] = value
        logits = np.asarray(self.session.run(None, feeds)[0], dtype=np.float64)
        if logits.ndim == 1 or logits.shape[1] == 1 or self.entail_index is None:
            return 1 / (1 + np.exp(-logits.reshape(len(pairs), -1)[:, -1]))
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True))[:, self.entail_index]

    def support(self, claim: str, passages: Sequence[str]) -> Support:
        units = [(p, a, b) for p, text in enumerate(passages) for a, b in sentence_spans(text)]
        if not units:
            return Support(0.0, 0, (0, 0))
        probs = self._probabilities([(passages[p][a:b], claim) for p, a, b in units])
        best = int(np.argmax(probs))
        p, a, b = units[best]
        return Support(float(probs[best]), p, (a, b))


def _parse_verdicts(text: str, n: int) -> list[tuple[float, str]]:
    match = re.search(r"\[.*\]", text, re.DOTALL)
    if not match:
        raise ValueError("no JSON array in the reply")
    data = json.loads(match.group(0))
    if not isinstance(data, list) or len(data) != n:
        raise ValueError(f"expected {n} verdicts, got {len(data) if isinstance(data, list) else type(data).__name__}")
    out = []
    for item in data:
        score = float(item.get("score", 0.0)) if isinstance(item, dict) else 0.0
        quote = str(item.get("quote") or "") if isinstance(item, dict) else ""
        out.append((min(max(score, 0.0), 1.0), quote))
    return out


def _locate(quote: str, passages: Sequence[str]) -> tuple[int, tuple[int, int] | None]:
    quote = quote.strip().strip('"')
    if len(quote) < 8:
        return 0, None
    for p, text in enumerate(passages):
        at = text.find(quote)
        if at >= 0:
            return p, (at, at + len(quote))
    return 0, None


@lru_cache(maxsize=1)
def _load_params() -> dict[str, Any]:
    return json.loads((resources.files("rag") / "judge_offline_v3.json").read_text())


def fit_logistic(
    X: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 6000, lr: float = 1.0
) -> tuple[float, np.ndarray]:
    """Plain L2-regularised logistic regression by gradient descent (a handful of features)."""
    w = np.zeros(X.shape[1])
    b = 0.0
    pos_weight = (len(y) - y.sum()) / max(y.sum(), 1)  # balance the classes
    sample_w = np.where(y == 1, pos_weight, 1.0)
    sample_w = sample_w / sample_w.mean()
    for _ in range(steps):
        z = X @ w + b
        p = 1 / (1 + np.exp(-z))
        g = (p - y) * sample_w
        w -= lr * (X.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return b, w


# -- checking an answer ---------------------------------------------------------------------
def needs_citation(sentence: Sentence) -> bool:
    """Whether a sentence states something a source must back: as in ALCE, every sentence of
    substance does; only our own framing sentences and fragments do not."""
    if sentence.kind == "framing":
        return False
    return len(re.sub(r"\[\d+\]", "", sentence.text).split()) >= 5


def _chunks_of(sources: list[Source], evidence: Sequence[Evidence]) -> dict[int, list[Evidence]]:
    """Source number → the evidence chunks it stands for (the cited ones, else all of the paper's)."""
    out: dict[int, list[Evidence]] = {}
    for s in sources:
        cited = [e for e in evidence if e.chunk.doc_id == s.doc_id and e.chunk.chunk_id in s.chunk_ids]
        out[s.number] = cited or [e for e in evidence if e.chunk.doc_id == s.doc_id]
    return out


def claims_to_check(
    sections: list[Section], sources: list[Source], evidence: Sequence[Evidence]
) -> list[tuple[str, list[str]]]:
    """Every cited sentence with the passages its valid citations point at (what a judge is asked)."""
    chunks_of = _chunks_of(sources, evidence)
    items = []
    for section in sections:
        for sentence in section.sentences:
            valid = [n for n in sentence.citations if n in chunks_of]
            if valid:
                items.append((re.sub(r"\s*\[\d+\]", "", sentence.text).strip(), _passages(valid, chunks_of)[0]))
    return items


def check(
    sections: list[Section],
    sources: list[Source],
    evidence: Sequence[Evidence],
    judge: Judge,
    mode: str = "flag",
) -> tuple[list[Section], list[Source], GroundingReport]:
    """Verify every sentence; returns the (repaired) sections and sources, and the receipt."""
    report = GroundingReport(judge=judge.name, mode=mode)
    if mode == "off":
        return sections, sources, report
    chunks_of = _chunks_of(sources, evidence)
    n_claims = supported = uncited = 0
    n_citations = relevant = invalid = 0
    out_sections: list[Section] = []
    for section in sections:
        kept: list[Sentence] = []
        for sentence in section.sentences:
            claim = re.sub(r"\s*\[\d+\]", "", sentence.text).strip()
            verdict = SentenceVerdict(
                section=section.title, sentence=sentence.text, citations=sentence.citations, verdict="no_claim"
            )
            valid = [n for n in sentence.citations if n in chunks_of]
            bad = [n for n in sentence.citations if n not in chunks_of]
            n_citations += len(sentence.citations)
            invalid += len(bad)
            worthy = needs_citation(sentence)
            if worthy:
                n_claims += 1
            if bad:
                verdict.verdict = "invalid_citation"
            if not sentence.citations:
                if worthy:
                    uncited += 1
                    verdict.verdict = "uncited"
                    report.sentences.append(verdict)
                    kept.append(_repair_uncited(sentence, verdict, report))
                else:
                    report.sentences.append(verdict)
                    kept.append(sentence)
                continue
            passages, owners = _passages(valid, chunks_of)
            result = judge.support(claim, passages) if passages else Support(0.0, 0, (0, 0))
            verdict.score = round(result.score, 4)
            if passages:
                owner, ev = owners[result.passage]
                verdict.best_source, verdict.chunk_id = owner, ev.chunk.chunk_id
                verdict.quote = passages[result.passage][result.span[0] : result.span[1]]
                verdict.quote_span = result.span
            ok = bool(passages) and result.supported(judge.threshold)
            if ok:
                if worthy:
                    supported += 1
                verdict.verdict = "supported" if not bad else "invalid_citation"
                relevant += _relevant_citations(claim, valid, chunks_of, judge)
                report.sentences.append(verdict)
                kept.append(_drop_invalid(sentence, bad) if bad and mode == "strict" else sentence)
                continue
            verdict.verdict = "unsupported" if not bad else "invalid_citation"
            repaired = _recite(claim, sentence, evidence, sources, judge, verdict, report) if mode == "strict" else None
            if repaired is not None:
                kept.append(repaired)
                if worthy:
                    supported += 1
            elif mode == "strict":
                verdict.action = "removed"
                report.changes.append(f"Removed an unsupported sentence from “{section.title}”: {sentence.text[:120]}")
            else:
                verdict.action = "flagged"
                kept.append(sentence.model_copy(update={"flagged": True}))
            report.sentences.append(verdict)
        if kept:
            out_sections.append(section.model_copy(update={"sentences": kept}))
    report.citation_recall = round(supported / n_claims, 4) if n_claims else None
    report.citation_precision = round(relevant / max(n_citations - invalid, 1), 4) if n_citations else None
    report.uncited_rate = round(uncited / n_claims, 4) if n_claims else None
    report.invalid_citation_rate = round(invalid / n_citations, 4) if n_citations else None
    return out_sections, sources, report


def _passages(
    numbers_: list[int], chunks_of: dict[int, list[Evidence]]
) -> tuple[list[str], list[tuple[int, Evidence]]]:
    passages, owners = [], []
    for n in numbers_:
        for ev in chunks_of.get(n, []):
            passages.append(ev.chunk.text)
            owners.append((n, ev))
    return passages, owners


def _relevant_citations(claim: str, valid: list[int], chunks_of: dict[int, list[Evidence]], judge: Judge) -> int:
    if len(valid) == 1:
        return 1
    count = 0
    for n in valid:
        alone = judge.support(claim, _passages([n], chunks_of)[0]).supported(judge.threshold)
        others = [m for m in valid if m != n]
        without = judge.support(claim, _passages(others, chunks_of)[0]).supported(judge.threshold)
        count += int(alone or not without)  # irrelevant only when it adds nothing the others lack
    return count


def _drop_invalid(sentence: Sentence, bad: list[int]) -> Sentence:
    text = sentence.text
    for n in bad:
        text = text.replace(f"[{n}]", "")
    return sentence.model_copy(
        update={
            "text": re.sub(r"\s+([.!?])$", r"\1", text.strip()),
            "citations": [c for c in sentence.citations if c not in bad],
        }
    )


def _repair_uncited(sentence: Sentence, verdict: SentenceVerdict, report: GroundingReport) -> Sentence:
    # A claim with no citation cannot be re-cited with confidence of what it meant: keep it, marked.
    verdict.action = "flagged"
    report.changes.append(f"Flagged a claim without citation: {sentence.text[:120]}")
    return sentence.model_copy(update={"flagged": True})


def _recite(
    claim: str,
    sentence: Sentence,
    evidence: Sequence[Evidence],
    sources: list[Source],
    judge: Judge,
    verdict: SentenceVerdict,
    report: GroundingReport,
) -> Sentence | None:
    """Point an unsupported sentence at the evidence that supports it best, if any does."""
    if not evidence:
        return None
    result = judge.support(claim, [e.chunk.text for e in evidence])
    if not result.supported(judge.threshold):
        return None
    ev = evidence[result.passage]
    source = source_for(sources, ev.chunk)
    text = with_citation(re.sub(r"\s*\[\d+\]", "", sentence.text), source.number)
    verdict.action = "recited"
    verdict.best_source, verdict.chunk_id, verdict.score = source.number, ev.chunk.chunk_id, round(result.score, 4)
    verdict.quote = ev.chunk.text[result.span[0] : result.span[1]]
    verdict.quote_span = result.span
    report.changes.append(f"Re-cited to [{source.number}]: {text[:120]}")
    return sentence.model_copy(update={"text": text, "citations": [source.number]})
