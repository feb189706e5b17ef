"""The consensus meter: each cited paper's stance toward the question, and the overall verdict.

A stance is ``supports`` (the paper's findings answer the question "yes" / back the claim),
``contradicts`` (they answer "no" / refute it) or ``neutral`` (related, but not deciding). Only the
papers that *test* what the question asks vote (:mod:`rag.lang.asks`: the question's two sides
reported on together); when none does, the verdict is ``unclear`` and the answer's Conclusion says
so (:func:`conclusion_for`). The verdict over the voters is ``yes``, ``possibly`` (leaning yes, with
dissent or weak evidence), ``no`` or ``unclear`` — with the counts behind it.

Offline, each paper's stance comes from its most relevant result and conclusion sentences: how
close they are to the question, whether they report an effect ("significantly higher",
"associated with") or a null result ("no significant difference", "did not differ"), negation
and direction against the question, and hedging. A small softmax model per question form over those
features (:mod:`rag.lang.findings`), the tests-the-question gate, the relevance weighting and the
verdict thresholds are fitted on the calibration splits of PubMedQA and SciFact
(``python -m evals.decision fit``) and ship as ``stance_offline_v2.json``
(:class:`rag.params.StanceParams`); ``rag eval --what decision`` reports on the held-out splits.
Papers are weighted by their retrieval score, so one that addresses the question head-on outweighs
tangential ones. With an endpoint, the chat model is asked instead (one call), and the offline
meter is the fallback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.check.offline import OfflineJudge
from rag.lang.asks import FORMS, PAIR_FEATURES, Form, pair_phrase, question_form
from rag.lang.findings import STANCE_FEATURES, PaperReading, read_paper
from rag.llm import ChatModel, Message, complete_parsed, json_reply_tokens, read_json_object
from rag.params import STANCE_FILE, StanceParams, bundled
from rag.prompts import fence, render
from rag.types import Consensus, Evidence, LLMCall, PaperStance, Section, Sentence, Source, TokenEmbedder

STANCES = ("supports", "contradicts", "neutral")
THRESHOLDS = ("decided_at", "possibly_at", "yes_at", "no_at")


def _of_paper(doc_id: str, evidence: Sequence[Evidence]) -> list[Evidence]:
    """All of one paper's evidence chunks (a stance is the paper's, not one citation's)."""
    return [ev for ev in evidence if ev.chunk.doc_id == doc_id]


METER_FEATURES = [*STANCE_FEATURES, "judge_polarity"]
"""The meter's per-paper features: the stance cues, and the citation judge's polarity model (supported
vs. contradicted, from pole clashes) reading the paper against the question as a claim."""


def meter_reading(
    question: str, chunks: Sequence[Evidence], embedder: TokenEmbedder, judge: OfflineJudge
) -> PaperReading:
    """:func:`read_paper` with :data:`METER_FEATURES`."""
    reading = read_paper(question, chunks, embedder)
    passages = [ev.chunk.text for ev in chunks]
    polarity = 1.0
    if judge.polarity is not None:
        polarity = judge.polarity.probability(
            judge.polarity_features(question, passages, judge.features(question, passages))
        )
    reading.features = np.append(reading.features, polarity)
    return reading


class OfflineStance:
    """Per-paper stance from :func:`read_paper` features and a fitted softmax model."""

    def __init__(self, embedder: TokenEmbedder, params: StanceParams | None = None) -> None:
        self.embedder = embedder
        self.judge = OfflineJudge(embedder)
        p = (params or bundled(StanceParams, STANCE_FILE)).check(METER_FEATURES, list(STANCES), PAIR_FEATURES)
        self.name = p.version
        self.tests, self.tests_at = p.tests, p.tests_at
        # per form, (3, n_features) with rows in STANCES order: questions and claims read differently
        self.W = {form: np.array(p.weights[form], dtype=float) for form in FORMS}
        self.b = {form: np.array(p.bias[form], dtype=float) for form in FORMS}
        self.aggregation = {form: p.aggregation[form].model_dump() for form in FORMS}

    def probabilities(self, features: np.ndarray, form: Form) -> np.ndarray:
        z = self.W[form] @ features + self.b[form]
        e = np.exp(z - z.max())
        return e / e.sum()

    def readings(
        self, question: str, sources: Sequence[Source], evidence: Sequence[Evidence]
    ) -> list[tuple[Source, PaperReading]]:
        """Each cited paper's reading (features, relevance, telling sentence)."""
        out = []
        for s in sources:
            chunks = _of_paper(s.doc_id, evidence)
            if chunks:
                out.append((s, meter_reading(question, chunks, self.embedder, self.judge)))
        return out

    def testing(self, reading: PaperReading, form: Form) -> bool | None:
        """Whether the paper tests what the question asks; None where no gate was fitted for the form
        (every paper votes)."""
        cut = self.tests_at.get(form, 0.0)  # type: ignore[call-overload]  # form is one of FORMS
        if self.tests is None or cut <= 0.0:
            return None
        return self.tests.probability(reading.tests) >= cut

    def meter(self, question: str, sources: Sequence[Source], evidence: Sequence[Evidence]) -> Consensus:
        papers: list[PaperStance] = []
        probs: list[np.ndarray] = []
        scores: list[float] = []
        form = question_form(question)
        for s, reading in self.readings(question, sources, evidence):
            p = self.probabilities(reading.features, form)
            probs.append(p)
            scores.append(reading.retrieval)
            papers.append(
                PaperStance(
                    number=s.number,
                    doc_id=s.doc_id,
                    title=s.title,
                    stance=STANCES[int(np.argmax(p))],
                    confidence=round(float(p.max()), 3),
                    relevance=round(reading.relevance, 3),
                    tests=self.testing(reading, form),
                    sentence=reading.sentence,
                    chunk_id=reading.chunk_id,
                )
            )
        return self.verdict(papers, probs, scores, form)

    def verdict(
        self, papers: list[PaperStance], probs: list[np.ndarray], scores: list[float], form: Form = "question"
    ) -> Consensus:
        """Stance mass of the papers that test the question, weighted by retrieval score → yes /
        possibly / no / unclear; ``unclear`` when none tests it."""
        if not papers:
            return Consensus(verdict="unclear", method=self.name, summary="No cited paper to weigh.")
        voters = [i for i, paper in enumerate(papers) if paper.tests is not False]
        if not voters:
            return Consensus.from_papers("unclear", papers, method=self.name)
        p = self.aggregation[form]
        mass = stance_mass([probs[i] for i in voters], [scores[i] for i in voters], p["tau"])
        sup, con = float(mass[0]), float(mass[1])
        return Consensus.from_papers(
            verdict_of(sup, con, **{k: p[k] for k in THRESHOLDS}),
            papers,
            method=self.name,
            scores={"supports": round(sup, 3), "contradicts": round(con, 3), "neutral": round(float(mass[2]), 3)},
        )


def relevance_weights(scores: Sequence[float], tau: float) -> np.ndarray:
    """Softmax of retrieval scores at temperature ``tau``: papers that match the question head-on
    (the retriever ranks them first) outweigh tangential ones."""
    z = (np.asarray(scores, dtype=float) - max(scores)) / tau
    w = np.exp(z)
    return w / w.sum()


VERDICTS = ("yes", "possibly", "no", "unclear")


def stance_mass(probs: Sequence[np.ndarray], scores: Sequence[float], tau: float) -> np.ndarray:
    """The voters' stance probabilities averaged with :func:`relevance_weights`: (supports,
    contradicts, neutral) mass behind a verdict."""
    return relevance_weights(scores, tau) @ np.array(probs)


def verdict_of(sup: float, con: float, decided_at: float, possibly_at: float, yes_at: float, no_at: float) -> str:
    """The verdict from the stance mass that supports and contradicts (the rest is neutral):
    too little decided mass is ``unclear``; otherwise the lean ``sup / (sup + con)`` decides."""
    return VERDICTS[int(verdicts_of(np.array([sup]), np.array([con]), decided_at, possibly_at, yes_at, no_at)[0])]


def verdicts_of(
    sup: np.ndarray, con: np.ndarray, decided_at: float, possibly_at: float, yes_at: float, no_at: float
) -> np.ndarray:
    """:func:`verdict_of` for arrays of masses, as indices into :data:`VERDICTS` (fitting tries thousands
    of thresholds)."""
    decided = sup + con
    lean = np.divide(sup, decided, out=np.full_like(decided, 0.5), where=decided > 0)
    choice = np.select([lean >= yes_at, lean >= possibly_at, lean <= no_at], [0, 1, 2], default=3)
    return np.where(decided < decided_at, 3, choice)


class LLMStance:
    """Asks the chat model for each cited paper's stance and the verdict (one call); offline on failure."""

    def __init__(self, chat: ChatModel, fallback: OfflineStance) -> None:
        self.chat, self.fallback = chat, fallback
        self.name = f"llm:{chat.name.removeprefix('llm:')}"

    async def meter(
        self, question: str, sources: Sequence[Source], evidence: Sequence[Evidence]
    ) -> tuple[Consensus, LLMCall]:
        """The consensus, and what the call cost (with a note when the offline meter stood in)."""
        blocks = []
        for s in sources:
            text = "\n".join(ev.chunk.text for ev in _of_paper(s.doc_id, evidence))
            blocks.append(f'<source id="{s.number}" title="{fence(s.title)}">\n{fence(text)}\n</source>')
        messages = [
            Message("system", render("stance_system_v1")),
            Message("user", render("stance_user_v1", question=fence(question), sources="\n".join(blocks))),
        ]
        unusable = "LLM consensus unusable, offline meter used instead"
        parse = lambda text: parse_stances(text, sources, evidence, self.name)  # noqa: E731
        consensus, call = await complete_parsed(
            self.chat, messages, parse, unusable, max_tokens=json_reply_tokens(len(sources)), json_object=True
        )
        return consensus or self.fallback.meter(question, sources, evidence), call


def parse_stances(text: str, sources: Sequence[Source], evidence: Sequence[Evidence], method: str) -> Consensus:
    """Read the model's JSON reply (``{"verdict": ..., "papers": [{"source", "stance", "quote"}]}``)."""
    return stances_from(read_json_object(text), sources, evidence, method)


def stances_from(
    data: dict[str, Any], sources: Sequence[Source], evidence: Sequence[Evidence], method: str
) -> Consensus:
    """The consensus from the model's ``verdict`` and ``papers`` (ValueError when the verdict is not one of ours)."""
    verdict = str(data.get("verdict", "")).lower()
    if verdict not in ("yes", "possibly", "no", "unclear"):
        raise ValueError(f"unknown verdict {verdict!r}")
    by_number = {s.number: s for s in sources}
    papers: list[PaperStance] = []
    for item in data.get("papers") or []:
        if not isinstance(item, dict):
            continue
        number = re.sub(r"\D", "", str(item.get("source", "")))  # 2, "2", "S2" and "[2]" alike
        s = by_number.get(int(number)) if number else None
        stance = str(item.get("stance", "")).lower()
        if s is None or stance not in STANCES or any(p.number == s.number for p in papers):
            continue
        quote = str(item.get("quote", ""))
        chunk_id = next(
            (ev.chunk.chunk_id for ev in _of_paper(s.doc_id, evidence) if quote and quote in ev.chunk.text),
            next((ev.chunk.chunk_id for ev in _of_paper(s.doc_id, evidence)), ""),
        )
        papers.append(
            PaperStance(
                number=s.number, doc_id=s.doc_id, title=s.title, stance=stance, sentence=quote, chunk_id=chunk_id
            )
        )
    return Consensus.from_papers(verdict, papers, method=method)


ADJACENT = "Closest Findings"
"""Where a drafted Conclusion goes when no cited paper tests the question: it quoted adjacent papers."""
_NOT_BODY = ("Introduction", "Limitations and Conflicting Evidence", "Conclusion", ADJACENT)


def conclusion_for(question: str, consensus: Consensus, sections: list[Section]) -> list[Section]:
    """The sections with a Conclusion that says what the evidence does and does not show.

    When no cited paper tests the question, the drafted Conclusion (the adjacent papers' own
    conclusions) becomes "Closest Findings" and the Conclusion says so in plain words; when only
    some test it, the Conclusion first says which, and its sentences that cite only adjacent papers
    move to "Closest Findings". Unchanged when the meter did not judge it.
    """
    testing, n = consensus.testing, len(consensus.papers)
    if testing is None or testing == n or not n:
        return sections
    drafted = next((s for s in sections if s.title == "Conclusion"), None)
    rest = [s for s in sections if s is not drafted]
    if testing == 0:
        pair = pair_phrase(question)
        topics = [s.title for s in rest if s.title not in _NOT_BODY]
        lines = [
            (
                "The one cited paper does not test this directly"
                if n == 1
                else f"None of the {n} cited papers tests this directly"
            )
            + (f" — {'it does not report' if n == 1 else 'none reports'} on {pair} together" if pair else "")
            + ", so this evidence does not show whether the answer is yes or no.",
            ("What it reports" if n == 1 else "What they report")
            + " bears on adjacent questions"
            + (f" ({'; '.join(topics)})" if topics else "")
            + " and is given above as context, not as an answer.",
        ]
        moved = [drafted.model_copy(update={"title": ADJACENT})] if drafted and drafted.sentences else []
        return [*rest, *moved, Section(title="Conclusion", sentences=[Sentence(text=t, kind="framing") for t in lines])]
    numbers = {p.number for p in consensus.papers if p.tests is not False}
    lines = [
        f"Of the {n} cited papers, {testing} {'tests' if testing == 1 else 'test'} this directly "
        f"({' '.join(f'[{k}]' for k in sorted(numbers))}); the others address adjacent questions and do not "
        "count toward the verdict."
    ]
    if consensus.verdict == "unclear":
        lines.append("What they report is too weak or too indirect for this evidence to settle the question.")
    framing = [Sentence(text=t, kind="framing") for t in lines]
    # a drafted sentence that cites only adjacent papers is no conclusion on the question
    kept = [s for s in drafted.sentences if numbers & set(s.citations)] if drafted else []
    aside = [s for s in drafted.sentences if s not in kept] if drafted else []
    adjacent = [Section(title=ADJACENT, sentences=aside)] if aside else []
    return [*rest, *adjacent, Section(title="Conclusion", sentences=[*framing, *kept])]
