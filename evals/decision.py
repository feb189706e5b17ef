"""Decision eval: the consensus meter's verdict against yes/no/maybe and SUPPORT/CONTRADICT/NEI labels.

Each question is answered end to end (retrieve → draft → check → consensus) and the verdict is
mapped to the dataset's labels: ``yes`` and ``possibly`` (a yes that leans) → yes / SUPPORT,
``no`` → no / CONTRADICT, ``unclear`` → maybe / NOT_ENOUGH_INFO. Reported: accuracy (bootstrap 95% CI), macro-F1, the
confusion matrix, the verdict distribution. The shipped stance model was fitted on the
calibration splits (PubMedQA ``cv``, SciFact ``train``), so when a set has those splits only the
other split (PubMedQA ``test``, SciFact ``dev``) is reported.

:func:`fit` (``python -m evals.decision fit --write rag/stance_offline_v1.json``) refits the offline
meter on the calibration splits: the per-paper stance model from labelled (question, paper) pairs,
then the relevance weighting and verdict thresholds end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals.common import EVAL_COLLECTION, bootstrap_ci, eval_settings, prepare_collection, read_jsonl, write_jsonl
from evals.fitting import fit_softmax
from rag.chunk import chunk_paper
from rag.consensus import (
    FORMS,
    STANCES,
    THRESHOLDS,
    OfflineStance,
    question_form,
    relevance_weights,
    verdict_of,
)
from rag.embed import Embedder
from rag.lang.findings import STANCE_FEATURES as FEATURES
from rag.lang.findings import read_paper
from rag.params import StanceParams
from rag.read import read_path
from rag.settings import Settings
from rag.types import Evidence

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
    }


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
        "| gold \\ predicted | " + " | ".join(labels) + " |",
        "| --- |" + " --- |" * len(labels),
    ]
    for g in labels:
        lines.append(f"| {g} | " + " | ".join(str(section["confusion"][g][p]) for p in labels) + " |")
    return "\n".join(lines) + "\n"


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


def fit(
    sets: Sequence[tuple[Path, Path, Path]], embedder: Embedder, write: Path | None = None, l2: float = 1e-3
) -> dict[str, Any]:
    """Fit the offline meter on the calibration splits of ``(questions, corpus, eval_dir)`` sets.

    1. Per paper: a softmax over :func:`read_paper` features of labelled (question, paper) pairs.
    2. Per question, end to end: each calibration question is answered (retrieve → draft → check,
       the collection under ``eval_dir/store``), its cited papers are read, and the relevance
       temperature and verdict thresholds are chosen for the best accuracy, averaged over the sets.
    Per-paper accuracy on the held-out splits is reported; the end-to-end held-out figure is
    ``rag eval --what decision``.
    """
    X, y, calib, names = [], [], [], []
    for questions_path, corpus_path, _ in sets:
        papers = _papers([corpus_path])
        for question, doc, stance, split in stance_pairs(read_jsonl(questions_path)):
            if doc in papers:
                X.append(read_paper(question, papers[doc], embedder).features)
                y.append(stance)
                calib.append(split in CALIBRATION_SPLITS)
                names.append(questions_path.parent.name)
    Xa, ya, ca, na = np.vstack(X), np.array(y), np.array(calib), np.array(names)
    W, b = fit_softmax(Xa[ca], ya[ca], l2=l2)
    pred = np.argmax(Xa @ W.T + b, axis=1)
    held = ~ca
    params: dict[str, Any] = {
        "version": "offline-v1",
        "features": FEATURES,
        "stances": list(STANCES),
        "weights": np.round(W, 4).tolist(),
        "bias": np.round(b, 4).tolist(),
        "aggregation": {
            form: {"tau": 0.05, "decided_at": 0.4, "possibly_at": 0.55, "yes_at": 0.7, "no_at": 0.3} for form in FORMS
        },
    }
    result: dict[str, Any] = {
        "n_pairs_calibration": int(ca.sum()),
        "n_pairs_held_out": int(held.sum()),
        "paper_accuracy_calibration": round(float((pred[ca] == ya[ca]).mean()), 4),
    }
    for name in sorted(set(names)):
        m = held & (na == name)
        if m.any():
            result[f"paper_accuracy_held_out_{name}"] = round(float((pred[m] == ya[m]).mean()), 4)
    questions = _calibration_questions(sets, OfflineStance(embedder, StanceParams.model_validate(params)))
    params["aggregation"] = fit_aggregation(questions)
    result["question_accuracy_calibration"] = _question_accuracy(questions, params["aggregation"])
    params["fitted_on"] = "PubMedQA cv split + SciFact train split (python -m evals.decision fit)"
    result["params"] = params
    if write:
        write.write_text(StanceParams.model_validate(params).model_dump_json(indent=1) + "\n")
    return result


# (question form, label kind, gold label, per-paper stance probabilities, retrieval scores)
_Readings = list[tuple[str, str, str, list[np.ndarray], list[float]]]


def _calibration_questions(sets: Sequence[tuple[Path, Path, Path]], stance: OfflineStance) -> _Readings:
    from rag.pipeline import answer

    out: _Readings = []
    for questions_path, corpus_path, eval_dir in sets:
        settings = eval_settings(eval_dir)
        prepare_collection([corpus_path], settings, progress=False)
        questions = [
            q
            for q in read_jsonl(questions_path)
            if q.get("label") and (q.get("meta") or {}).get("official_split") in CALIBRATION_SPLITS
        ]
        kind = kind_of(questions) or "yesno"
        for q in questions:
            a = answer(q["question"], collection=EVAL_COLLECTION, settings=settings, consensus="off")
            readings = stance.readings(q["question"], a.sources, a.evidence)
            out.append(
                (
                    question_form(q["question"]),
                    kind,
                    q["label"],
                    [stance.probabilities(r.features) for _, r in readings],
                    [r.retrieval for _, r in readings],
                )
            )
    return out


def _mass(probs: list[np.ndarray], scores: list[float], tau: float) -> tuple[float, float]:
    if not probs:
        return 0.0, 0.0
    mass = relevance_weights(scores, tau) @ np.array(probs)
    return float(mass[0]), float(mass[1])


def _question_accuracy(questions: _Readings, aggregation: dict[str, dict[str, float]]) -> dict[str, float]:
    by_kind: dict[str, list[float]] = {}
    for form, kind, label, probs, scores in questions:
        p = aggregation[form]
        verdict = verdict_of(*_mass(probs, scores, p["tau"]), **{k: p[k] for k in THRESHOLDS})
        by_kind.setdefault(kind, []).append(float(LABEL_OF_VERDICT[kind][verdict] == label))
    return {k: round(float(np.mean(v)), 4) for k, v in by_kind.items()}


def fit_aggregation(questions: _Readings) -> dict[str, dict[str, float]]:
    """Per question form (a question vs. a claim to check), the relevance temperature and verdict
    thresholds with the best accuracy; a form with no calibration data gets the other's.

    Accuracy depends on where "unclear" starts (``decided_at``), where the yes side starts
    (``possibly_at`` ≥ 0.5 of the decided mass supporting) and where "no" starts (``no_at`` ≤ 0.5);
    ``yes_at`` only splits the yes side into "possibly" and "yes" and is set 0.15 above
    ``possibly_at``, so leaning answers say so.
    """
    fitted = {form: _fit_form([q[1:] for q in questions if q[0] == form]) for form in FORMS}
    found = [f for f in FORMS if fitted[f]]
    return {form: fitted[form] or fitted[found[0]] for form in FORMS}


def _fit_form(questions: list[tuple[str, str, list[np.ndarray], list[float]]]) -> dict[str, float]:
    best: dict[str, float] = {}
    best_score = -1.0
    if not questions:
        return best
    for tau in (0.02, 0.05, 0.1, 0.2, 1.0):
        masses = [(kind, label, *_mass(probs, scores, tau)) for kind, label, probs, scores in questions]
        for decided_at in np.arange(0.2, 0.81, 0.05):
            for possibly_at in np.arange(0.5, 0.81, 0.05):  # the yes side needs at least as much support
                for no_at in np.arange(0.2, 0.5 + 1e-9, 0.05):  # as contradiction, and "no" the reverse
                    th = {
                        "decided_at": round(float(decided_at), 2),
                        "possibly_at": round(float(possibly_at), 2),
                        "yes_at": round(float(min(possibly_at + 0.15, 1.0)), 2),
                        "no_at": round(float(no_at), 2),
                    }
                    hits = [
                        LABEL_OF_VERDICT[kind][verdict_of(sup, con, **th)] == label for kind, label, sup, con in masses
                    ]
                    score = float(np.mean(hits))
                    if score > best_score:
                        best_score, best = score, {"tau": tau, **th}
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["fit"])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument(
        "--write", type=Path, default=None, help="write the params here (e.g. rag/stance_offline_v1.json)"
    )
    parser.add_argument("--eval-dir", type=Path, default=Path("eval-out"), help="eval folders (collections reused)")
    args = parser.parse_args()
    from rag.embed import CachedEmbedder, LocalEmbedder

    sets = [
        (args.data / n / "questions.jsonl", args.data / n / "corpus.jsonl", args.eval_dir / n)
        for n in ("pubmedqa", "scifact")
    ]
    result = fit(sets, CachedEmbedder(LocalEmbedder()), write=args.write)
    print(json.dumps({k: v for k, v in result.items() if k != "params"}, indent=1))


if __name__ == "__main__":
    main()
