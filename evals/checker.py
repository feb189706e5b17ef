"""Checker eval: can the offline judge tell a supported claim from an unsupported one?

Pairs from SciFact: positives are SUPPORT claims vs their evidence abstract; three negative sets:
``random`` (the claim vs a random abstract), ``topical`` (vs the top-ranked non-evidence
abstract, BM25 over the corpus), ``contradicted`` (CONTRADICT claims vs their evidence abstract).
The judge's logistic weights and threshold are fitted on the calibration split (official
``train``) and balanced accuracy is reported on the held-out split (official ``dev``), with a
bootstrap interval and a k-fold cross-validation inside the calibration split.

Questions with a ``long_answer`` instead (PubMedQA) measure the judge as shipped, out of domain:
each conclusion against its own abstract (which leaves the conclusion out), a random abstract and
the top-ranked other one. ``python -m evals.checker fit --write rag/judge_offline_v3.json`` refits
the shipped parameters.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from evals.common import read_jsonl, reliability
from evals.fitting import fit_logistic
from rag.check import FEATURES, POLARITY_FEATURES, OfflineJudge, quoted
from rag.embed import CachedEmbedder, TokenEmbedder
from rag.errors import ConfigError
from rag.params import JudgeParams, Logistic


def build_pairs(questions: list[dict[str, Any]], corpus: dict[str, str], seed: int = 0) -> list[dict[str, Any]]:
    """Judge pairs: (claim, abstract, label, negative set). SciFact claims give all three sets;
    questions with a ``long_answer`` (PubMedQA) give their conclusion vs. its abstract, a random one
    and the top-ranked other one."""
    import bm25s
    import Stemmer

    rng = random.Random(seed)
    ids = list(corpus)
    stemmer = Stemmer.Stemmer("english")
    index = bm25s.BM25()
    index.index(
        bm25s.tokenize([corpus[i] for i in ids], stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    pairs = []
    for q in questions:
        gold = q.get("gold_doc_ids") or []
        if not gold or gold[0] not in corpus:
            continue
        if q.get("label") in ("SUPPORT", "CONTRADICT"):
            claim, kind = q["question"], "claim"  # a SciFact claim
        elif q.get("long_answer"):
            claim, kind = q["long_answer"], "conclusion"  # PubMedQA's, which its abstract in the corpus leaves out
        else:
            continue
        split = (q.get("meta") or {}).get("official_split", "train")
        base = {"qid": q["qid"], "claim": claim, "split": split, "kind": kind}
        if q.get("label") == "CONTRADICT":
            pairs.append({**base, "doc": gold[0], "label": 0, "set": "contradicted"})
            continue
        pairs.append({**base, "doc": gold[0], "label": 1, "set": "positive"})
        other = rng.choice([i for i in rng.sample(ids, min(5, len(ids))) if i not in gold] or [ids[0]])
        pairs.append({**base, "doc": other, "label": 0, "set": "random"})
        tokens = bm25s.tokenize([claim], stopwords="en", stemmer=stemmer, show_progress=False)
        rows, _ = index.retrieve(tokens, k=min(10, len(ids)), show_progress=False)
        topical = next((ids[r] for r in rows[0] if ids[r] not in gold), None)
        if topical is not None:
            pairs.append({**base, "doc": topical, "label": 0, "set": "topical"})
    return pairs


def balanced_accuracy(pos_scores: np.ndarray, neg_scores: np.ndarray, threshold: float) -> float:
    tpr = float(np.mean(pos_scores >= threshold)) if len(pos_scores) else float("nan")
    tnr = float(np.mean(neg_scores < threshold)) if len(neg_scores) else float("nan")
    return round((tpr + tnr) / 2, 4)


def balanced_accuracy_ci(
    pos_scores: np.ndarray, neg_scores: np.ndarray, threshold: float, seed: int = 0, n: int = 1000
) -> list[float]:
    """95% percentile bootstrap interval, positives and negatives resampled separately."""
    if not len(pos_scores) or not len(neg_scores):
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    tpr = (pos_scores[rng.integers(0, len(pos_scores), (n, len(pos_scores)))] >= threshold).mean(axis=1)
    tnr = (neg_scores[rng.integers(0, len(neg_scores), (n, len(neg_scores)))] < threshold).mean(axis=1)
    ba = (tpr + tnr) / 2
    return [round(float(np.quantile(ba, 0.025)), 4), round(float(np.quantile(ba, 0.975)), 4)]


NEGATIVE_SETS = ("random", "topical", "contradicted")
GRID = np.linspace(0.02, 0.98, 97)
POLARITY_L2 = 0.03  # two dozen correlated cues, ~400 pairs: stronger shrinkage generalised better in cross-validation


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-z)))


def fit_judge(
    X: np.ndarray, XB: np.ndarray, y: np.ndarray, sets: np.ndarray, verbatim: np.ndarray, fit: np.ndarray
) -> tuple[tuple[float, np.ndarray], tuple[float, np.ndarray], float]:
    """Fit both models and the threshold on the pairs where ``fit`` is true.

    Relevance learns supported vs. merely on-topic pairs (random ones are separated anyway, and the
    checker meets on-topic passages in practice: what retrieval found); polarity learns supported vs.
    contradicted pairs of the same paper. The threshold maximises the mean balanced accuracy over the
    three negative sets.
    """
    fit = fit & ~verbatim  # quotes never reach the models (OfflineJudge.support answers them outright)
    rel_rows = fit & ((sets == "positive") | (sets == "topical"))
    rel = fit_logistic(X[rel_rows], y[rel_rows])
    pol_rows = fit & ((sets == "positive") | (sets == "contradicted"))
    pol = fit_logistic(XB[pol_rows], y[pol_rows], l2=POLARITY_L2)
    # the threshold is for what the models score
    return rel, pol, best_threshold(judge_scores(X, XB, verbatim, rel, pol), sets, fit)


def best_threshold(scores: np.ndarray, sets: np.ndarray, keep: np.ndarray) -> float:
    """The cut on :data:`GRID` with the best mean balanced accuracy over the three negative sets, on ``keep``."""
    pos = scores[keep & (sets == "positive")]
    return float(
        max(GRID, key=lambda t: np.mean([balanced_accuracy(pos, scores[keep & (sets == s)], t) for s in NEGATIVE_SETS]))
    )


def record_text(rec: dict[str, Any]) -> str:
    """A corpus record as the judge reads it: its title, then its abstract (or excerpts)."""
    title = rec.get("title") or ""
    return (f"{title}. " if title else "") + (rec.get("abstract") or rec.get("text") or "")


def judge_scores(
    X: np.ndarray, XB: np.ndarray, verbatim: np.ndarray, rel: tuple[float, np.ndarray], pol: tuple[float, np.ndarray]
) -> np.ndarray:
    # as in OfflineJudge.support: a claim quoted word for word from its passage is supported
    return np.where(verbatim, 1.0, _sigmoid(X @ rel[1] + rel[0]) * _sigmoid(XB @ pol[1] + pol[0]))


def run(
    questions_path: Path,
    corpus_paths: Path | list[Path],
    embedder: TokenEmbedder,
    seed: int = 0,
    write_params: Path | None = None,
    folds: int = 5,
) -> dict[str, Any]:
    corpus = {}
    for corpus_path in [corpus_paths] if isinstance(corpus_paths, Path) else corpus_paths:
        for rec in read_jsonl(corpus_path):
            corpus[rec["doc_id"]] = record_text(rec)
    questions = read_jsonl(questions_path)
    pairs = build_pairs(questions, corpus, seed)
    if not pairs:
        raise ConfigError(
            f"--what checker needs SciFact-style claims (label SUPPORT/CONTRADICT) or questions with a long_answer, "
            f"whose gold paper is in the corpus; {questions_path} has none."
        )
    if not any(p["kind"] == "claim" for p in pairs):
        return shipped(pairs, corpus, embedder, seed)  # nothing to fit on: measure the judge as it ships
    pairs = [p for p in pairs if p["kind"] == "claim"]
    judge = OfflineJudge(CachedEmbedder(embedder))  # only its features: they do not depend on the params
    X, XB = [], []
    for p in pairs:
        passages = [corpus[p["doc"]]]
        reading = judge.features(p["claim"], passages)
        X.append(reading.relevance)
        XB.append(judge.polarity_features(p["claim"], passages, reading))
    Xa, XBa = np.vstack(X), np.vstack(XB)
    y = np.array([p["label"] for p in pairs], dtype=float)
    splits = np.array([p["split"] for p in pairs])
    sets = np.array([p["set"] for p in pairs])
    verbatim = np.array([quoted(p["claim"], [corpus[p["doc"]]]) for p in pairs])
    calib = splits == "train"
    report_split = ~calib if (~calib).any() else calib
    rel, pol, threshold = fit_judge(Xa, XBa, y, sets, verbatim, calib)
    scores = judge_scores(Xa, XBa, verbatim, rel, pol)
    out: dict[str, Any] = {
        "judge": judge.name,
        "calibration_split": "train",
        "report_split": "dev" if (~calib).any() else "train",
        "threshold": round(threshold, 3),
        "n_pairs": {
            s: int(((sets == s) & report_split).sum()) for s in ("positive", "random", "topical", "contradicted")
        },
        "n_pairs_calibration": int(calib.sum()),
        "balanced_accuracy": {},
        "balanced_accuracy_ci": {},
        "calibration_cv": {},
        "cv_folds": folds,
        "relevance_only": {},
        "weights": {
            "relevance": {
                "bias": round(float(rel[0]), 4),
                **{f: round(float(v), 4) for f, v in zip(FEATURES, rel[1], strict=True)},
            },
            "polarity": {
                "bias": round(float(pol[0]), 4),
                **{f: round(float(v), 4) for f, v in zip(POLARITY_FEATURES, pol[1], strict=True)},
            },
        },
    }
    pos = scores[report_split & (sets == "positive")]
    relevance = _sigmoid(Xa @ rel[1] + rel[0])
    rel_pos = relevance[calib & (sets == "positive")]
    rel_threshold = float(max(GRID, key=lambda t: balanced_accuracy(rel_pos, relevance[calib & (y == 0)], t)))
    # k-fold cross-validation inside the calibration split (claims kept whole): how stable the fit is
    claims = np.array([p["qid"] for p in pairs])
    order = sorted(set(claims[calib]))
    random.Random(seed).shuffle(order)
    cv: dict[str, list[float]] = {s: [] for s in NEGATIVE_SETS}
    for fold in range(folds if len(order) >= 2 * folds else 0):
        held = calib & np.isin(claims, order[fold::folds])
        f_rel, f_pol, f_threshold = fit_judge(Xa, XBa, y, sets, verbatim, calib & ~held)
        f_scores = judge_scores(Xa, XBa, verbatim, f_rel, f_pol)
        for s in NEGATIVE_SETS:
            cv[s].append(
                balanced_accuracy(f_scores[held & (sets == "positive")], f_scores[held & (sets == s)], f_threshold)
            )
    for name in NEGATIVE_SETS:
        neg = scores[report_split & (sets == name)]
        out["balanced_accuracy"][name] = balanced_accuracy(pos, neg, threshold)
        out["balanced_accuracy_ci"][name] = balanced_accuracy_ci(pos, neg, threshold, seed)
        if not np.all(np.isnan(cv[name])):  # a fold without pairs of a set gives NaN
            out["calibration_cv"][name] = round(float(np.nanmean(cv[name])), 4)
        # the relevance model alone, as a baseline measured in the same run
        out["relevance_only"][name] = balanced_accuracy(
            relevance[report_split & (sets == "positive")], relevance[report_split & (sets == name)], rel_threshold
        )
    # the judge's score read as a probability of support, over all the reported pairs
    out["reliability"] = reliability(scores[report_split], y[report_split])
    if write_params:
        params = JudgeParams(
            version=judge.name,
            relevance=Logistic(features=FEATURES, weights=np.round(rel[1], 4).tolist(), bias=round(float(rel[0]), 4)),
            polarity=Logistic(
                features=POLARITY_FEATURES, weights=np.round(pol[1], 4).tolist(), bias=round(float(pol[0]), 4)
            ),
            threshold=out["threshold"],
            fitted_on="SciFact train split (python -m evals.checker fit)",
        )
        write_params.write_text(params.model_dump_json(indent=1) + "\n")
    return out


def shipped(
    pairs: list[dict[str, Any]], corpus: dict[str, str], embedder: TokenEmbedder, seed: int = 0
) -> dict[str, Any]:
    """The judge as shipped (its fitted models and threshold, nothing refitted) on pairs from another
    data set: how well the SciFact fit carries over."""
    judge = OfflineJudge(CachedEmbedder(embedder))
    sets = np.array([p["set"] for p in pairs])
    scores = np.array([judge.support(p["claim"], [corpus[p["doc"]]]).score for p in pairs])
    pos = scores[sets == "positive"]
    out: dict[str, Any] = {
        "judge": judge.name,
        "mode": "shipped",
        "calibration_split": "none (shipped params)",
        "report_split": "all",
        "threshold": round(judge.threshold, 3),
        "n_pairs": {s: int((sets == s).sum()) for s in ("positive", *NEGATIVE_SETS) if (sets == s).any()},
        "true_positive_rate": round(float(np.mean(pos >= judge.threshold)), 4),
        "balanced_accuracy": {},
        "balanced_accuracy_ci": {},
    }
    out["reliability"] = reliability(scores, [float(p["label"]) for p in pairs])
    for name in NEGATIVE_SETS:
        neg = scores[sets == name]
        if len(neg) and len(pos):
            out["balanced_accuracy"][name] = balanced_accuracy(pos, neg, judge.threshold)
            out["balanced_accuracy_ci"][name] = balanced_accuracy_ci(pos, neg, judge.threshold, seed)
    return out


def markdown(section: dict[str, Any]) -> str:
    ba = section["balanced_accuracy"]
    if section.get("mode") == "shipped":
        return (
            f"## Checker (judge `{section['judge']}` as shipped, threshold {section['threshold']}; "
            f"positives: conclusions vs. their own abstract)\n\n"
            f"True positive rate {section['true_positive_rate']:.3f} of {section['n_pairs']['positive']} positives.\n\n"
            "| negative set | balanced accuracy (95% CI) | negatives |\n| --- | --- | --- |\n"
            + "\n".join(
                f"| {k} | {v:.3f} ({section['balanced_accuracy_ci'][k][0]:.3f}–{section['balanced_accuracy_ci'][k][1]:.3f})"
                f" | {section['n_pairs'][k]} |"
                for k, v in ba.items()
            )
            + "\n"
            + calibration_line(section)
        )
    cv = section.get("calibration_cv", {})
    ci = section.get("balanced_accuracy_ci") or {k: [float("nan")] * 2 for k in ba}
    n = section["n_pairs"]
    return (
        f"## Checker (judge `{section['judge']}`, fitted on {section['calibration_split']}, reported on {section['report_split']}; "
        f"threshold {section['threshold']})\n\n"
        f"| negative set | balanced accuracy (95% CI) | calibration split, {section.get('cv_folds', 5)}-fold CV "
        "| relevance model alone "
        "| positives | negatives |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(
            f"| {k} | {v:.3f} ({ci[k][0]:.3f}–{ci[k][1]:.3f}) | {cv.get(k, float('nan')):.3f} "
            f"| {section['relevance_only'][k]:.3f} | {n['positive']} | {n[k]} |"
            for k, v in ba.items()
        )
        + "\n"
        + calibration_line(section)
    )


def calibration_line(section: dict[str, Any]) -> str:
    """The judge's score read as a probability of support: how far it is from the observed rate."""
    r = section.get("reliability") or {}
    if not r.get("n"):
        return ""
    bins = ", ".join(f"{b['predicted']:.2f}→{b['observed']:.2f} ({b['n']})" for b in r["bins"])
    return (
        f"\nCalibration of the score as a probability of support ({r['n']} pairs): expected calibration "
        f"error **{r['ece']:.3f}**; predicted → observed per bin: {bins} (`reliability.png`).\n"
    )


def main() -> None:
    import argparse

    from rag.embed import LocalEmbedder

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["fit"])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--write", type=Path, default=None, help="write the params here (rag/judge_offline_v3.json)")
    args = parser.parse_args()
    scifact = args.data / "scifact"
    result = run(scifact / "questions.jsonl", scifact / "corpus.jsonl", LocalEmbedder(), write_params=args.write)
    print(json.dumps({k: v for k, v in result.items() if k != "weights"}, indent=1))


if __name__ == "__main__":
    main()
