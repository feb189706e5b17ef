"""The consensus meter: each cited paper's stance toward the question, and the overall verdict.

A stance is ``supports`` (the paper's findings answer the question "yes" / back the claim),
``contradicts`` (they answer "no" / refute it) or ``neutral`` (related, but not deciding). The
verdict over the cited papers is ``yes``, ``possibly`` (leaning yes, with dissent or weak
evidence), ``no`` or ``unclear`` — with the counts behind it.

Offline, each paper's stance comes from its most relevant result and conclusion sentences: how
close they are to the question, whether they report an effect ("significantly higher",
"associated with") or a null result ("no significant difference", "did not differ"), negation
and direction against the question, and hedging. A small softmax model over those features is
fitted on labelled data (``rag eval --what decision`` fits on the calibration split and reports
on the rest) and ships as ``stance_offline_v1.json``. Papers are weighted by their retrieval score, so
one paper that addresses the question head-on outweighs tangential ones. With an endpoint, the chat
model is asked instead (one call), and the offline meter is the fallback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from rag.check import _NEGATION, _direction, content_stems
from rag.draft import chunk_sentences, fence
from rag.embed import Embedder
from rag.errors import LLMError
from rag.llm import ChatModel, Completion, Message
from rag.prompts import render
from rag.types import Consensus, Evidence, PaperStance, Source

STANCES = ("supports", "contradicts", "neutral")
FEATURES = [
    "relevance",
    "coverage",
    "null_result",
    "effect",
    "negation",
    "direction_conflict",
    "direction_agree",
    "hedge",
    "paper_null_result",
    "paper_effect",
    "question_negated",
    "question_compares",
    "p_significant",
    "p_not_significant",
    "last_null_result",
    "last_effect",
]

_NULL = re.compile(
    r"\b(no (?:\w+ )?(?:difference|differences|effect|effects|association|associations|correlation|relationship|"
    r"change|changes|benefit|improvement|advantage|impact|influence|role|evidence|increase|decrease|reduction)|"
    r"not (?:statistically )?significant(?:ly)?|non-?significant(?:ly)?|did not (?:\w+ )?(?:differ|change|improve|"
    r"affect|reduce|increase|decrease|correlate|predict|influence|alter|show|reach|find|lead)|"
    r"(?:was|were|is|are) not (?:\w+ )?(?:associated|related|correlated|different|predictive|affected|improved|"
    r"increased|reduced|changed|effective|superior|better)|unrelated|similar|comparable|unchanged|unaffected|"
    r"failed to|neither|equivalent|no longer)\b",
    re.IGNORECASE,
)
_EFFECT = re.compile(
    r"\b(significant(?:ly)?|p\s?[<≤]\s?0?\.0[0-5]\d*|associated with|correlated with|predict(?:s|ed|ive|or|ors)|"
    r"risk factor|increased risk|higher risk|odds ratio|hazard ratio|effective(?:ly)?|efficacy|improved|superior|"
    r"beneficial|benefit(?:s|ed)?|reduced|increased|decreased|elevated|enhanced|impaired|resulted in|led to|"
    r"caused|induced|promoted|demonstrated|confirmed|showed that|indicate[sd]? that)\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(may|might|could|possibl[ey]|potential(?:ly)?|unclear|uncertain|remains?|further (?:studies|research|"
    r"investigation|trials)|warrant\w*|preliminary|limited|controversial|conflicting|inconclusive|needed|"
    r"insufficient|not (?:yet )?(?:known|clear|established))\b",
    re.IGNORECASE,
)
_COMPARES = re.compile(
    r"\b(than|versus|vs\.?|compared|comparison|differ\w*|better|worse|superior|inferior|more|less|equivalent)\b",
    re.IGNORECASE,
)
_P_VALUE = re.compile(r"\bp\s?(<|≤|<=|=|>|≥|>=)\s?(0?\.\d+|1(?:\.0+)?)", re.IGNORECASE)
_TOP_WEIGHTS = (0.5, 0.3, 0.2)
THRESHOLDS = ("decided_at", "possibly_at", "yes_at", "no_at")


def _p_values(text: str) -> tuple[int, int]:
    """(significant, not significant) p-values stated in ``text`` at the 0.05 level."""
    sig = nonsig = 0
    for op, value in _P_VALUE.findall(text):
        v = float(value)
        if (op in ("<", "≤", "<=") and v <= 0.05) or (op == "=" and v < 0.05):
            sig += 1
        elif (op in (">", "≥", ">=") and v >= 0.05) or (op == "=" and v >= 0.05):
            nonsig += 1
    return sig, nonsig


@dataclass
class PaperReading:
    """Features of one paper against the question, and the sentence that shows its stance."""

    features: np.ndarray
    relevance: float  # best sentence similarity to the question
    sentence: str
    chunk_id: str
    retrieval: float = 0.0  # best retrieval score of the paper's chunks (fused, higher is better)


def _load_params() -> dict[str, object]:
    return json.loads((resources.files("rag") / "stance_offline_v1.json").read_text())


def read_paper(question: str, chunks: Sequence[Evidence], embedder: Embedder) -> PaperReading:
    """The stance features of one paper (its evidence chunks) toward ``question``."""
    sents: list[tuple[str, str, str]] = []  # (text, role, chunk_id)
    for ev in chunks:
        sents += [(t, role, ev.chunk.chunk_id) for t, role, _ in chunk_sentences(ev.chunk) if len(t.split()) >= 4]
    if not sents:
        return PaperReading(np.zeros(len(FEATURES)), 0.0, "", chunks[0].chunk.chunk_id if chunks else "")
    vecs = embedder.embed([question, *(s[0] for s in sents)])
    sims = vecs[1:] @ vecs[0]
    q_terms = content_stems(question)
    coverage = np.array([len(q_terms & content_stems(t)) / max(len(q_terms), 1) for t, _, _ in sents])
    rel = sims + 0.5 * coverage
    findings = [i for i, (_, role, _) in enumerate(sents) if role in ("result", "conclusion")] or list(
        range(len(sents))
    )
    top = sorted(findings, key=lambda i: -rel[i])[: len(_TOP_WEIGHTS)]
    weights = np.array(_TOP_WEIGHTS[: len(top)]) / sum(_TOP_WEIGHTS[: len(top)])
    q_neg = bool(_NEGATION.search(question))
    q_dir = _direction(question)

    def cue(i: int) -> tuple[float, float, float, float, float, float]:
        text = sents[i][0]
        null = bool(_NULL.search(text))
        effect = bool(_EFFECT.search(text)) and not null
        neg = bool(_NEGATION.search(text)) != q_neg
        d = _direction(text)
        return (
            float(null),
            float(effect),
            float(neg),
            float(q_dir != 0 and d == -q_dir),
            float(q_dir != 0 and d == q_dir),
            float(bool(_HEDGE.search(text))),
        )

    per_top = np.array([cue(i) for i in top])
    weighted = weights @ per_top
    all_cues = np.array([cue(i)[:2] for i in findings])
    p_sig, p_non = map(sum, zip(*(_p_values(sents[i][0]) for i in findings), strict=True))
    last = findings[-2:]  # a paper's last findings usually state its main result
    feats = np.array(
        [
            float(sims.max()),
            float(coverage.max()),
            *weighted[:6],
            float(all_cues[:, 0].mean()),
            float(all_cues[:, 1].mean()),
            float(q_neg),
            float(bool(_COMPARES.search(question))),
            min(p_sig, 3) / 3,
            min(p_non, 3) / 3,
            float(np.mean([cue(i)[0] for i in last])),
            float(np.mean([cue(i)[1] for i in last])),
        ]
    )
    # the sentence that shows the stance: the most relevant finding that carries a cue, else the most relevant
    shown = next((i for i in top if per_top[top.index(i)][:2].any()), top[0])
    retrieval = max(ev.score for ev in chunks)
    return PaperReading(feats, float(sims.max()), sents[shown][0], sents[shown][2], retrieval)


class OfflineStance:
    """Per-paper stance from :func:`read_paper` features and a fitted softmax model."""

    name = "offline-v1"

    def __init__(self, embedder: Embedder, params: dict[str, object] | None = None) -> None:
        self.embedder = embedder
        p = params or _load_params()
        self.W = np.array(p["weights"], dtype=float)  # (3, n_features), rows in STANCES order
        self.b = np.array(p["bias"], dtype=float)
        self.thresholds = {k: float(p[k]) for k in THRESHOLDS}  # type: ignore[arg-type]
        self.tau = float(p["tau"])  # type: ignore[arg-type]

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
            chunks = [ev for ev in evidence if ev.chunk.doc_id == s.doc_id]
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
        return self.verdict(papers, probs, scores)

    def verdict(self, papers: list[PaperStance], probs: list[np.ndarray], scores: list[float]) -> Consensus:
        """Stance mass weighted by retrieval score → yes / possibly / no / unclear."""
        if not papers:
            return Consensus(verdict="unclear", method=self.name, summary="No cited paper to weigh.")
        mass = relevance_weights(scores, self.tau) @ np.array(probs)
        sup, con = float(mass[0]), float(mass[1])
        return Consensus.from_papers(
            verdict_of(sup, con, **self.thresholds),
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


def fit_softmax(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int = 3,
    l2: float = 1e-3,
    steps: int = 20000,
    lr: float = 1.0,
    balanced: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """L2-regularised softmax regression by gradient descent (a dozen features); ``balanced``
    weights the classes equally (better macro-F1, worse accuracy)."""
    W = np.zeros((n_classes, X.shape[1]))
    b = np.zeros(n_classes)
    counts = np.bincount(y, minlength=n_classes).astype(float)
    sample_w = (len(y) / (n_classes * np.maximum(counts, 1)))[y] if balanced else np.ones(len(y))
    onehot = np.eye(n_classes)[y]
    for _ in range(steps):
        z = X @ W.T + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * sample_w[:, None]
        W -= lr * (g.T @ X / len(y) + l2 * W)
        b -= lr * g.mean(axis=0)
    return W, b


class LLMStance:
    """Asks the chat model for each cited paper's stance and the verdict (one call); offline on failure."""

    def __init__(self, chat: ChatModel, fallback: OfflineStance) -> None:
        self.chat, self.fallback = chat, fallback
        self.name = f"llm:{chat.name.removeprefix('llm:')}"
        self.completion: Completion | None = None
        self.error: str | None = None

    async def meter(self, question: str, sources: Sequence[Source], evidence: Sequence[Evidence]) -> Consensus:
        blocks = []
        for s in sources:
            text = "\n".join(ev.chunk.text for ev in evidence if ev.chunk.doc_id == s.doc_id)
            blocks.append(f'<source id="{s.number}" title="{fence(s.title)}">\n{fence(text)}\n</source>')
        messages = [
            Message("system", render("stance_system_v1")),
            Message("user", render("stance_user_v1", question=fence(question), sources="\n".join(blocks))),
        ]
        try:
            self.completion = await self.chat.complete(messages)
            return parse_stances(self.completion.text, sources, evidence, self.name)
        except (LLMError, ValueError) as exc:
            self.error = f"LLM consensus unusable, offline meter used instead: {exc}"
            return self.fallback.meter(question, sources, evidence)


def parse_stances(text: str, sources: Sequence[Source], evidence: Sequence[Evidence], method: str) -> Consensus:
    """Read the model's JSON reply (``{"verdict": ..., "papers": [{"source", "stance", "quote"}]}``)."""
    m = re.search(r"\{.*\}", text, re.DOTALL)
    if not m:
        raise ValueError("no JSON object in the reply")
    data = json.loads(m.group(0))
    verdict = str(data.get("verdict", "")).lower()
    if verdict not in ("yes", "possibly", "no", "unclear"):
        raise ValueError(f"unknown verdict {verdict!r}")
    by_number = {s.number: s for s in sources}
    papers: list[PaperStance] = []
    for item in data.get("papers", []):
        s = by_number.get(int(item.get("source", -1)))
        stance = str(item.get("stance", "")).lower()
        if s is None or stance not in STANCES or any(p.number == s.number for p in papers):
            continue
        quote = str(item.get("quote", ""))
        chunk_id = next(
            (ev.chunk.chunk_id for ev in evidence if ev.chunk.doc_id == s.doc_id and quote and quote in ev.chunk.text),
            next((ev.chunk.chunk_id for ev in evidence if ev.chunk.doc_id == s.doc_id), ""),
        )
        papers.append(
            PaperStance(
                number=s.number, doc_id=s.doc_id, title=s.title, stance=stance, sentence=quote, chunk_id=chunk_id
            )
        )
    return Consensus.from_papers(verdict, papers, method=method)
