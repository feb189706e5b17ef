"""Decision eval: the consensus meter's verdict against yes/no/maybe and SUPPORT/CONTRADICT/NEI labels.

Each question is answered end to end (retrieve → draft → check → consensus) and the verdict is
mapped to the dataset's labels: ``yes`` and ``possibly`` (a yes that leans) → yes / SUPPORT,
``no`` → no / CONTRADICT, ``unclear`` → maybe / NOT_ENOUGH_INFO. Reported: accuracy (bootstrap 95% CI), macro-F1, the
confusion matrix, the verdict distribution. The shipped stance model was fitted on the
calibration splits (PubMedQA ``cv``, SciFact ``train``), so when a set has those splits only the
other split (PubMedQA ``test``, SciFact ``dev``) is reported.

:func:`fit` (``python -m evals.decision fit --write rag/stance_offline_v2.json``) refits the offline
meter on the calibration splits: the per-paper stance model from labelled (question, paper) pairs,
then the relevance weighting and verdict thresholds end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evals.common import (
    EVAL_COLLECTION,
    bootstrap_ci,
    eval_settings,
    prepare_collection,
    read_jsonl,
    reliability,
    write_jsonl,
)
from evals.fitting import fit_logistic, fit_softmax
from rag.check.offline import OfflineJudge
from rag.chunk import chunk_paper
from rag.consensus import (
    METER_FEATURES,
    STANCES,
    THRESHOLDS,
    VERDICTS,
    OfflineStance,
    meter_reading,
    stance_mass,
    verdicts_of,
)
from rag.lang.asks import FORMS, PAIR_FEATURES, question_form
from rag.params import Logistic, StanceParams
from rag.read import read_path
from rag.settings import Settings
from rag.types import Evidence, Source, TokenEmbedder

CALIBRATION_SPLITS = {"cv", "train"}
LABEL_OF_VERDICT = {
    "yesno": {"yes": "yes", "possibly": "yes", "no": "no", "unclear": "maybe"},
    "claim": {"yes": "SUPPORT", "possibly": "SUPPORT", "no": "CONTRADICT", "unclear": "NOT_ENOUGH_INFO"},
}
LABELS = {"yesno": ["yes", "no", "maybe"], "claim": ["SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO"]}
STANCE_OF_LABEL = {
    "yes": 0,
    "SUPPORT": 0,
    "no": 1,
    "CONTRADICT": 1,
    "maybe": 2,
    "NOT_ENOUGH_INFO": 2,
}


def kind_of(questions: Sequence[dict[str, Any]]) -> str | None:
    labels = {q.get("label") for q in questions} - {None}
    if labels and labels <= set(LABELS["yesno"]):
        return "yesno"
    if labels and labels <= set(LABELS["claim"]):
        return "claim"
    return None


def held_out(questions: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The questions not used to fit the shipped model, and a name for that split."""
    splits = {(q.get("meta") or {}).get("official_split") for q in questions}
    rest = [q for q in questions if (q.get("meta") or {}).get("official_split") not in CALIBRATION_SPLITS]
    if splits & CALIBRATION_SPLITS and rest:
        return rest, "/".join(sorted(s for s in splits - CALIBRATION_SPLITS if s)) or "held-out"
    return list(questions), "all (no calibration split in this set)"


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    f1s = []
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return round(float(np.mean(f1s)), 4)


def run(
    questions: list[dict[str, Any]], settings: Settings, out: Path, progress: Any = None, seed: int = 0
) -> dict[str, Any] | None:
    """Answer each labelled question and score the consensus verdict; None when the set has no labels."""
    from rag.pipeline import aanswer

    kind = kind_of(questions)
    if kind is None:
        return None
    chosen, split = held_out([q for q in questions if q.get("label")])
    rows: list[dict[str, Any]] = []

    async def all_questions() -> None:
        for q in chosen:
            a = await aanswer(q["question"], collection=EVAL_COLLECTION, settings=settings)
            verdict = a.consensus.verdict if a.consensus else "unclear"
            rows.append(
                {
                    "qid": q["qid"],
                    "label": q["label"],
                    "verdict": verdict,
                    "predicted": LABEL_OF_VERDICT[kind][verdict],
                    "counts": [a.consensus.supports, a.consensus.contradicts, a.consensus.neutral]
                    if a.consensus
                    else [0, 0, 0],
                    "testing": a.consensus.testing if a.consensus else None,
                    "scores": a.consensus.scores if a.consensus else {},
                }
            )
            if progress:
                progress()

    asyncio.run(all_questions())
    write_jsonl(out / "decisions.jsonl", rows)
    return score(rows, kind, split, seed)


def score(rows: list[dict[str, Any]], kind: str, split: str, seed: int = 0) -> dict[str, Any]:
    labels = LABELS[kind]
    gold = [r["label"] for r in rows]
    pred = [r["predicted"] for r in rows]
    correct = [float(g == p) for g, p in zip(gold, pred, strict=True)]
    majority = max(labels, key=gold.count) if gold else labels[0]
    answered = [c for c, r in zip(correct, rows, strict=True) if r["verdict"] != "unclear"]
    return {
        "kind": kind,
        "split": split,
        "n_questions": len(rows),
        "accuracy": {"mean": round(float(np.mean(correct)), 4) if rows else None, "ci95": bootstrap_ci(correct, seed)},
        "macro_f1": macro_f1(gold, pred, labels),
        "majority_class": {"label": majority, "accuracy": round(gold.count(majority) / max(len(gold), 1), 4)},
        "labels": labels,
        "confusion": {
            g: {p: sum(1 for a, b in zip(gold, pred, strict=True) if a == g and b == p) for p in labels} for g in labels
        },
        "verdicts": {v: sum(r["verdict"] == v for r in rows) for v in ("yes", "possibly", "no", "unclear")},
        "coverage": round(len(answered) / len(rows), 4) if rows else None,
        "answered_accuracy": {
            "mean": round(float(np.mean(answered)), 4) if answered else None,
            "ci95": bootstrap_ci(answered, seed),
        },
        "no_paper_tests": sum(r.get("testing") == 0 for r in rows),
        "reliability": reliability(*_confidences(rows, kind)),
    }


_MASS_OF_VERDICT = {"yes": "supports", "possibly": "supports", "no": "contradicts", "unclear": "neutral"}


def _confidences(rows: list[dict[str, Any]], kind: str) -> tuple[list[float], list[float]]:
    """The meter's stance mass behind each verdict (its probability of being right) and whether it was
    right; questions no paper tests have no mass and are left out."""
    pairs = [
        (r["scores"][_MASS_OF_VERDICT[r["verdict"]]], float(r["predicted"] == r["label"]))
        for r in rows
        if r.get("scores")
    ]
    return [p for p, _ in pairs], [o for _, o in pairs]


def markdown(section: dict[str, Any]) -> str:
    labels = section["labels"]
    acc = section["accuracy"]
    lines = [
        f"## Decision ({section['n_questions']} questions, split {section['split']})",
        "",
        f"Accuracy **{acc['mean']:.3f}** ({acc['ci95'][0]:.3f}–{acc['ci95'][1]:.3f}), macro-F1 {section['macro_f1']:.3f}; "
        f"majority class ({section['majority_class']['label']}) {section['majority_class']['accuracy']:.3f}. "
        f"Verdicts: " + ", ".join(f"{k} {v}" for k, v in section["verdicts"].items()) + ".",
        "",
        *_abstention_lines(section),
        "| gold \\ predicted | " + " | ".join(labels) + " |",
        "| --- |" + " --- |" * len(labels),
    ]
    for g in labels:
        lines.append(f"| {g} | " + " | ".join(str(section["confusion"][g][p]) for p in labels) + " |")
    return "\n".join(lines) + "\n"


def _abstention_lines(section: dict[str, Any]) -> list[str]:
    """Coverage and the answered part's accuracy; the meter's calibration."""
    if section.get("coverage") is None:
        return []
    ans = section["answered_accuracy"]
    lines = [
        f"Answered (not unclear) **{section['coverage']:.3f}** of the questions"
        + (f", accuracy **{ans['mean']:.3f}** ({ans['ci95'][0]:.3f}–{ans['ci95'][1]:.3f})" if ans["mean"] else "")
        + f"; {section['no_paper_tests']} unclear because no cited paper tests the question.",
        "",
    ]
    r = section.get("reliability") or {}
    if r.get("n"):
        lines += [
            f"Calibration of the verdict's stance mass as a probability of being right ({r['n']} questions): "
            f"expected calibration error **{r['ece']:.3f}** (`reliability.png`).",
            "",
        ]
    return lines


# -- fitting the offline stance model -----------------------------------------------------------
def _papers(corpora: Sequence[Path]) -> dict[str, list[Evidence]]:
    out: dict[str, list[Evidence]] = {}
    for path in corpora:
        for result in read_path(path):
            if isinstance(result, Exception):
                continue
            chunks = chunk_paper(result)
            out[result.doc_id] = [Evidence(chunk=c, score=1.0, rank=i + 1) for i, c in enumerate(chunks)]
    return out


def stance_pairs(questions: Sequence[dict[str, Any]]) -> list[tuple[str, str, int, str]]:
    """(question, doc_id, stance index, split) for every labelled question-paper pair.

    PubMedQA: the question's paper with its yes/no/maybe label. SciFact: each evidence paper with its
    SUPPORT/CONTRADICT label; for NOT_ENOUGH_INFO claims the paper the claim was written from (related,
    not deciding) as neutral.
    """
    pairs = []
    for q in questions:
        meta = q.get("meta") or {}
        split = meta.get("official_split", "")
        label = q.get("label")
        if label in ("yes", "no", "maybe"):
            pairs += [(q["question"], d, STANCE_OF_LABEL[label], split) for d in q.get("gold_doc_ids") or []]
        elif label in ("SUPPORT", "CONTRADICT"):
            for d, doc_label in (meta.get("doc_labels") or {}).items():
                pairs.append((q["question"], d, STANCE_OF_LABEL[doc_label], split))
        elif label == "NOT_ENOUGH_INFO":
            pairs += [(q["question"], d, 2, split) for d in meta.get("cited_doc_ids") or []]
    return pairs


@dataclass
class _Read:
    """One cited paper of a calibration question, as the meter reads it."""

    probs: np.ndarray  # stance probabilities, STANCES order
    retrieval: float
    pair: np.ndarray  # rag.lang.asks.PAIR_FEATURES
    gold: bool  # labelled as evidence for the question: it tests it


@dataclass
class _Asked:
    qid: str
    form: str  # question or claim
    kind: str  # yesno or claim
    label: str
    papers: list[_Read]


def fit(
    sets: Sequence[tuple[Path, Path, Path]], embedder: TokenEmbedder, write: Path | None = None, reuse: bool = False
) -> dict[str, Any]:
    """Fit the offline meter on the calibration splits of ``(questions, corpus, eval_dir)`` sets.

    1. Per paper and question form: a softmax over :func:`meter_reading` features of labelled
       (question, paper) pairs, its shrinkage chosen by cross-validation.
    2. Per question, end to end: each calibration question is answered (retrieve → draft → check,
       the collection under ``eval_dir/store``) and its cited papers are read. A logistic gate learns
       which of them test the question (the labelled evidence papers do; the rest were merely
       retrieved); the gate's cut and the verdict thresholds are chosen by 5-fold cross-validation
       over the questions — for questions with an abstention credit (:func:`_objective`: the meter
       answers where it is likely right and says "unclear" elsewhere), for claims by accuracy
       (NOT_ENOUGH_INFO is a label there).
    The end-to-end held-out figure is ``rag eval --what decision``.
    """
    X, y, forms, questions = [], [], [], []
    judge = OfflineJudge(embedder)
    for questions_path, corpus_path, _ in sets:
        papers = _papers([corpus_path])
        for question, doc, stance, split in stance_pairs(read_jsonl(questions_path)):
            if doc in papers and split in CALIBRATION_SPLITS:
                X.append(meter_reading(question, papers[doc], embedder, judge).features)
                y.append(stance)
                forms.append(question_form(question))
                questions.append(question)
    Xa, ya, fa = np.vstack(X), np.array(y), np.array(forms)
    folds = np.array([zlib.crc32(q.encode()) % _FOLDS for q in questions])  # a question's papers stay together
    params: dict[str, Any] = {
        "version": "offline-v2",
        "features": METER_FEATURES,
        "stances": list(STANCES),
        "weights": {},
        "bias": {},
        "aggregation": {form: dict(_DEFAULT_AGGREGATION) for form in FORMS},
    }
    result: dict[str, Any] = {"n_pairs_calibration": len(ya), "paper_accuracy_cv": {}, "l2": {}}
    for form in FORMS:
        m = fa == form
        if not m.any():
            m = np.ones_like(m)  # no calibration pairs of this form: the other's model stands in
        l2_, cv_accuracy = _choose_l2(Xa[m], ya[m], folds[m])
        W, b = fit_softmax(Xa[m], ya[m], l2=l2_)
        params["weights"][form], params["bias"][form] = np.round(W, 4).tolist(), np.round(b, 4).tolist()
        result["l2"][form], result["paper_accuracy_cv"][form] = l2_, cv_accuracy
    asked = _calibration_questions(sets, OfflineStance(embedder, StanceParams.model_validate(params)), reuse)
    gate, chosen = fit_gate(asked)
    params.update(gate)
    result.update(chosen)
    params["fitted_on"] = "PubMedQA cv split + SciFact train split (python -m evals.decision fit)"
    result["params"] = params
    if write:
        write.write_text(StanceParams.model_validate(params).model_dump_json(indent=1) + "\n")
    return result


# What "unclear" is worth to a reader against a verdict that is right (1) or wrong (0): a yes/no is
# given only where it is right more often than this. Above the share of PubMedQA's majority label
# (0.55), so "always yes" does not pay; the bar for the answered part is 0.75.
ABSTAIN_CREDIT = 0.6
_DEFAULT_AGGREGATION = {"tau": 0.05, "decided_at": 0.4, "possibly_at": 0.55, "yes_at": 0.7, "no_at": 0.3}
_TESTS_AT = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)  # 0: no gate, every cited paper votes
_CV_NOISE = 0.01  # objective differences below this are within what 5 folds of ~500 questions can tell apart
_FOLDS = 5
_GATE_L2 = 1e-2  # seven correlated coverage features: light shrinkage
_L2S = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # the stance softmax's shrinkage, chosen by cross-validation


def _choose_l2(X: np.ndarray, y: np.ndarray, folds: np.ndarray) -> tuple[float, float]:
    """The shrinkage of the per-paper stance softmax with the best cross-validated accuracy, and that accuracy."""
    best = (0.0, -1.0)
    for l2 in _L2S:
        hits = []
        for k in range(_FOLDS):
            test = folds == k
            if test.any() and (~test).any():
                W, b = fit_softmax(X[~test], y[~test], l2=l2)
                hits += list(np.argmax(X[test] @ W.T + b, axis=1) == y[test])
        if hits and (acc := float(np.mean(hits))) > best[1]:
            best = (l2, round(acc, 4))
    return best


def _calibration_questions(
    sets: Sequence[tuple[Path, Path, Path]], stance: OfflineStance, reuse: bool = False
) -> list[_Asked]:
    """Each calibration question answered and its cited papers read. The answers (sources and
    evidence) are kept in ``eval_dir/calibration_answers.jsonl``; ``reuse`` reads them back, so a
    refit after a change to the meter's features skips retrieval and drafting."""
    from rag.pipeline import answer

    out: list[_Asked] = []
    for questions_path, corpus_path, eval_dir in sets:
        settings = eval_settings(eval_dir)
        cache = eval_dir / "calibration_answers.jsonl"
        kept = {r["qid"]: r for r in read_jsonl(cache)} if reuse and cache.exists() else {}
        if not kept:
            prepare_collection([corpus_path], settings, progress=False)
        questions = [
            q
            for q in read_jsonl(questions_path)
            if q.get("label") and (q.get("meta") or {}).get("official_split") in CALIBRATION_SPLITS
        ]
        kind = kind_of(questions) or "yesno"
        rows = []
        for q in questions:
            if q["qid"] in kept:
                sources = [Source.model_validate(x) for x in kept[q["qid"]]["sources"]]
                evidence = [Evidence.model_validate(x) for x in kept[q["qid"]]["evidence"]]
            else:
                a = answer(q["question"], collection=EVAL_COLLECTION, settings=settings, consensus="off")
                sources, evidence = a.sources, a.evidence
            rows.append(
                {
                    "qid": q["qid"],
                    "sources": [x.model_dump() for x in sources],
                    "evidence": [x.model_dump() for x in evidence],
                }
            )
            gold, form = _tested_by(q), question_form(q["question"])
            papers = [
                _Read(stance.probabilities(r.features, form), r.retrieval, r.tests, s.doc_id in gold)
                for s, r in stance.readings(q["question"], sources, evidence)
            ]
            out.append(_Asked(q["qid"], form, kind, q["label"], papers))
        if len(kept) < len(questions):  # something was answered anew: keep it for the next refit
            eval_dir.mkdir(parents=True, exist_ok=True)
            write_jsonl(cache, rows)
    return out


def _tested_by(q: dict[str, Any]) -> set[str]:
    """The papers labelled as testing the question: PubMedQA's own paper, SciFact's evidence papers (a
    NOT_ENOUGH_INFO claim has none: the paper it was written from does not decide it)."""
    if q.get("label") == "NOT_ENOUGH_INFO":
        return set()
    return set(q.get("gold_doc_ids") or []) | set((q.get("meta") or {}).get("doc_labels") or {})


def fit_gate(asked: list[_Asked]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tests-the-question gate, its cut per question form and the verdict thresholds (see
    :func:`fit`); returns the params and what cross-validation estimated for the choice. A cut of 0
    (every cited paper votes, as before the gate) is one of the candidates."""
    P = np.array([r.pair for q in asked for r in q.papers])
    G = np.array([r.gold for q in asked for r in q.papers], dtype=float)
    bias, w = fit_logistic(P, G, l2=_GATE_L2)
    gate = Logistic(features=PAIR_FEATURES, weights=np.round(w, 4).tolist(), bias=round(float(bias), 4))
    p_tests = {id(r): gate.probability(r.pair) for q in asked for r in q.papers}
    cuts: dict[str, float] = {}
    chosen: dict[str, Any] = {"cv_estimate": {}, "cv_estimate_without_gate": {}}
    for form in FORMS:
        of_form = [q for q in asked if q.form == form]
        if not of_form:
            continue
        by_cut = {cut: _cross_validated(of_form, p_tests, cut) for cut in _TESTS_AT}
        best = max(_objective(e) for e in by_cut.values())
        # within the folds' noise of the best, the strictest gate: a meter that abstains when no paper
        # tests the question is worth more to a reader than one as accurate that lets any paper vote
        cuts[form] = max(cut for cut in _TESTS_AT if _objective(by_cut[cut]) >= best - _CV_NOISE)
        chosen["cv_estimate"][form] = by_cut[cuts[form]]
        chosen["cv_estimate_without_gate"][form] = by_cut[0.0]
        chosen.setdefault("cv_objective_by_cut", {})[form] = {
            str(cut): round(_objective(e), 4) for cut, e in by_cut.items()
        }
    for form in FORMS:
        cuts.setdefault(form, next(iter(cuts.values())))  # a form without calibration data: the other's cut
    passed = np.array([p_tests[id(r)] >= cuts[q.form] for q in asked for r in q.papers])
    chosen.update(
        tests_at=cuts,
        gate_recall_calibration=round(float(passed[G == 1].mean()), 4),
        gate_rejects_others_calibration=round(float(1 - passed[G == 0].mean()), 4),
    )
    aggregation = {
        form: fit_aggregation([q for q in asked if q.form == form] or asked, p_tests, cuts[form])[form]
        for form in FORMS
    }
    return {"tests": gate.model_dump(), "tests_at": cuts, "aggregation": aggregation}, chosen


def _cross_validated(asked: list[_Asked], p_tests: dict[int, float], cut: float) -> dict[str, dict[str, float]]:
    """The verdicts' figures when each fold's thresholds were fitted on the other folds."""
    folds = np.array([zlib.crc32(q.qid.encode()) % _FOLDS for q in asked])
    codes = np.zeros(len(asked), dtype=int)
    for k in range(_FOLDS):
        test = np.flatnonzero(folds == k)
        if len(test) and len(test) < len(asked):
            aggregation = fit_aggregation([q for q, f in zip(asked, folds, strict=True) if f != k], p_tests, cut)
            codes[test] = _codes([asked[i] for i in test], p_tests, cut, aggregation)
    return _estimate(asked, codes)


def _voting(q: _Asked, p_tests: dict[int, float], tests_at: float) -> list[_Read]:
    return [r for r in q.papers if p_tests[id(r)] >= tests_at]


def _masses(asked: list[_Asked], p_tests: dict[int, float], tests_at: float, tau: float) -> np.ndarray:
    """(n, 2) supporting and contradicting mass of each question's voters (zero without voters: unclear)."""
    out = np.zeros((len(asked), 2))
    for i, q in enumerate(asked):
        voters = _voting(q, p_tests, tests_at)
        if voters:
            out[i] = stance_mass([r.probs for r in voters], [r.retrieval for r in voters], tau)[:2]
    return out


def _hits(asked: list[_Asked]) -> np.ndarray:
    """(n, 4): whether each verdict (VERDICTS order) would be right for each question."""
    return np.array([[LABEL_OF_VERDICT[q.kind][v] == q.label for v in VERDICTS] for q in asked])


def _estimate(
    asked: list[_Asked], codes: np.ndarray, table: tuple[np.ndarray, np.ndarray] | None = None
) -> dict[str, dict[str, float]]:
    """Per label kind: accuracy, and the coverage and accuracy of the answered part (not ``unclear``).
    ``table``: :func:`_hits` and the kinds of ``asked``, when the caller scores it many times."""
    all_hits, kinds = table or (_hits(asked), np.array([q.kind for q in asked]))
    hits = all_hits[np.arange(len(asked)), codes]
    answered = codes != VERDICTS.index("unclear")
    out: dict[str, dict[str, float]] = {}
    for kind in sorted(set(kinds)):
        m = kinds == kind
        out[str(kind)] = {
            "accuracy": round(float(hits[m].mean()), 4),
            "coverage": round(float(answered[m].mean()), 4),
            "answered_accuracy": round(float(hits[m & answered].mean()), 4) if (m & answered).any() else 0.0,
        }
    return out


def _objective(estimate: dict[str, dict[str, float]]) -> float:
    """Claims: accuracy (NOT_ENOUGH_INFO is a label). Questions: a right verdict scores 1, a wrong one
    0 and "unclear" :data:`ABSTAIN_CREDIT` — Chow's rule, so the meter answers only where it is right
    more often than that, and abstains on the rest."""
    scores = []
    for kind, e in estimate.items():
        if kind == "claim":
            scores.append(e["accuracy"])
        else:
            answered = e["coverage"]
            scores.append(answered * e["answered_accuracy"] + (1 - answered) * ABSTAIN_CREDIT)
    return float(np.mean(scores))


def _codes(
    asked: list[_Asked], p_tests: dict[int, float], tests_at: float, agg: dict[str, dict[str, float]]
) -> np.ndarray:
    codes = np.zeros(len(asked), dtype=int)
    for form in FORMS:
        idx = [i for i, q in enumerate(asked) if q.form == form]
        if idx:
            th = agg[form]
            m = _masses([asked[i] for i in idx], p_tests, tests_at, th["tau"])
            codes[idx] = verdicts_of(m[:, 0], m[:, 1], **{k: th[k] for k in THRESHOLDS})
    return codes


def fit_aggregation(asked: list[_Asked], p_tests: dict[int, float], tests_at: float) -> dict[str, dict[str, float]]:
    """Per question form (a question vs. a claim to check), the relevance temperature and verdict
    thresholds with the best :func:`_objective`; a form with no calibration data gets the other's.

    The objective depends on where "unclear" starts (``decided_at``), where the yes side starts
    (``possibly_at`` ≥ 0.5 of the decided mass supporting) and where "no" starts (``no_at`` ≤ 0.5);
    ``yes_at`` only splits the yes side into "possibly" and "yes" and is set 0.15 above
    ``possibly_at``, so leaning answers say so.
    """
    fitted = {form: _fit_form([q for q in asked if q.form == form], p_tests, tests_at) for form in FORMS}
    found = [f for f in FORMS if fitted[f]]
    return {form: fitted[form] or fitted[found[0]] for form in FORMS}


def _fit_form(asked: list[_Asked], p_tests: dict[int, float], tests_at: float) -> dict[str, float]:
    best: dict[str, float] = {}
    best_score = -np.inf
    if not asked:
        return best
    table = (_hits(asked), np.array([q.kind for q in asked]))
    for tau in (0.02, 0.05, 0.1, 0.2, 1.0):
        m = _masses(asked, p_tests, tests_at, tau)
        for decided_at in np.arange(0.2, 0.81, 0.05):
            for possibly_at in np.arange(0.5, 0.81, 0.05):  # the yes side needs at least as much support
                for no_at in np.arange(0.2, 0.5 + 1e-9, 0.05):  # as contradiction, and "no" the reverse
                    th = {
                        "decided_at": round(float(decided_at), 2),
                        "possibly_at": round(float(possibly_at), 2),
                        "yes_at": round(float(min(possibly_at + 0.15, 1.0)), 2),
                        "no_at": round(float(no_at), 2),
                    }
                    score = _objective(_estimate(asked, verdicts_of(m[:, 0], m[:, 1], **th), table))
                    if score > best_score:
                        best_score, best = score, {"tau": tau, **th}
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["fit"])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument(
        "--write", type=Path, default=None, help="write the params here (e.g. rag/stance_offline_v2.json)"
    )
    parser.add_argument("--eval-dir", type=Path, default=Path("eval-out"), help="eval folders (collections reused)")
    parser.add_argument(
        "--reuse-answers",
        action="store_true",
        help="read the calibration answers kept by the last fit (after a change to the meter, not to retrieval)",
    )
    args = parser.parse_args()
    from rag.embed import CachedEmbedder, LocalEmbedder

    sets = [
        (args.data / n / "questions.jsonl", args.data / n / "corpus.jsonl", args.eval_dir / n)
        for n in ("pubmedqa", "scifact")
    ]
    result = fit(sets, CachedEmbedder(LocalEmbedder()), write=args.write, reuse=args.reuse_answers)
    print(json.dumps({k: v for k, v in result.items() if k != "params"}, indent=1))


if __name__ == "__main__":
    main()
