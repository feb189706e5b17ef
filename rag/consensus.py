"""The consensus meter: each cited paper's stance toward the question, and the overall verdict.

A stance is ``supports`` (the paper's findings answer the question "yes" / back the claim),
``contradicts`` (they answer "no" / refute it) or ``neutral`` (related, but not deciding). The
verdict over the cited papers is ``yes``, ``possibly`` (leaning yes, with dissent or weak
evidence), ``no`` or ``unclear`` — with the counts behind it.

Offline, each paper's stance comes from its most relevant result and conclusion sentences: how
close they are to the question, whether they report an effect ("significantly higher",
"associated with") or a null result ("no significant difference", "did not differ"), negation
and direction against the question, and hedging. A small softmax model over those features (:mod:`rag.lang.findings`),
the relevance weighting and the verdict thresholds are fitted on the calibration splits of
PubMedQA and SciFact (``python -m evals.decision fit``) and ship as ``stance_offline_v1.json``
(:class:`rag.params.StanceParams`);
``rag eval --what decision`` reports on the held-out splits. Papers are weighted by their
retrieval score, so one that addresses the question head-on outweighs tangential ones. With an endpoint, the chat
model is asked instead (one call), and the offline meter is the fallback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.lang.findings import STANCE_FEATURES, PaperReading, read_paper
from rag.llm import ChatModel, Message, complete_parsed, json_reply_tokens, read_json_object
from rag.params import STANCE_FILE, StanceParams, bundled
from rag.prompts import fence, render
from rag.types import Consensus, Embedder, Evidence, LLMCall, PaperStance, Source

STANCES = ("supports", "contradicts", "neutral")
THRESHOLDS = ("decided_at", "possibly_at", "yes_at", "no_at")
FORMS = ("question", "claim")


def question_form(text: str) -> str:
    """``question`` ("Does X reduce Y?") or ``claim`` (a statement to check, "X reduces Y."): the two
    are weighed with their own fitted thresholds."""
    return "question" if text.rstrip().endswith("?") else "claim"


def _of_paper(doc_id: str, evidence: Sequence[Evidence]) -> list[Evidence]:
    """All of one paper's evidence chunks (a stance is the paper's, not one citation's)."""
    return [ev for ev in evidence if ev.chunk.doc_id == doc_id]


class OfflineStance:
    """Per-paper stance from :func:`read_paper` features and a fitted softmax model."""

    def __init__(self, embedder: Embedder, params: StanceParams | None = None) -> None:
        self.embedder = embedder
        p = (params or bundled(StanceParams, STANCE_FILE)).check(STANCE_FEATURES, list(STANCES))
        self.name = p.version
        self.W = np.array(p.weights, dtype=float)  # (3, n_features), rows in STANCES order
        self.b = np.array(p.bias, dtype=float)
        self.aggregation = {form: p.aggregation[form].model_dump() for form in FORMS}  # type: ignore[index]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        z = self.W @ features + self.b
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
                out.append((s, read_paper(question, chunks, self.embedder)))
        return out

    def meter(self, question: str, sources: Sequence[Source], evidence: Sequence[Evidence]) -> Consensus:
        papers: list[PaperStance] = []
        probs: list[np.ndarray] = []
        scores: list[float] = []
        for s, reading in self.readings(question, sources, evidence):
            p = self.probabilities(reading.features)
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
                    sentence=reading.sentence,
                    chunk_id=reading.chunk_id,
                )
            )
        return self.verdict(papers, probs, scores, question_form(question))

    def verdict(
        self, papers: list[PaperStance], probs: list[np.ndarray], scores: list[float], form: str = "question"
    ) -> Consensus:
        """Stance mass weighted by retrieval score → yes / possibly / no / unclear."""
        if not papers:
            return Consensus(verdict="unclear", method=self.name, summary="No cited paper to weigh.")
        p = self.aggregation[form]
        mass = relevance_weights(scores, p["tau"]) @ np.array(probs)
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


def verdict_of(sup: float, con: float, decided_at: float, possibly_at: float, yes_at: float, no_at: float) -> str:
    """The verdict from the stance mass that supports and contradicts (the rest is neutral):
    too little decided mass is ``unclear``; otherwise the lean ``sup / (sup + con)`` decides."""
    decided = sup + con
    lean = sup / decided if decided else 0.5
    if decided < decided_at:
        return "unclear"
    if lean >= yes_at:
        return "yes"
    if lean >= possibly_at:
        return "possibly"
    if lean <= no_at:
        return "no"
    return "unclear"


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
