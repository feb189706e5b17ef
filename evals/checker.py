"""Checker eval: can the offline judge tell a supported claim from an unsupported one?

Pairs from SciFact: positives are SUPPORT claims vs their evidence abstract; three negative sets:
``random`` (the claim vs a random abstract), ``topical`` (vs the top-ranked non-evidence
abstract, BM25 over the corpus), ``contradicted`` (CONTRADICT claims vs their evidence abstract).
The judge's logistic weights and threshold are fitted on the calibration split (official
``train``) and balanced accuracy is reported on the held-out split (official ``dev``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from evals.common import read_jsonl
from rag.check import FEATURES, POLARITY_FEATURES, OfflineJudge, fit_logistic, quoted
from rag.embed import Embedder


def build_pairs(questions: list[dict[str, Any]], corpus: dict[str, str], seed: int = 0) -> list[dict[str, Any]]:
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
        if not gold or q.get("label") not in ("SUPPORT", "CONTRADICT"):
            continue
        split = (q.get("meta") or {}).get("official_split", "train")
        doc = gold[0]
        if q["label"] == "CONTRADICT":
            pairs.append(
                {"qid": q["qid"], "claim": q["question"], "doc": doc, "label": 0, "set": "contradicted", "split": split}
            )
            continue
        pairs.append(
            {"qid": q["qid"], "claim": q["question"], "doc": doc, "label": 1, "set": "positive", "split": split}
        )
        other = rng.choice([i for i in rng.sample(ids, 5) if i not in gold] or [ids[0]])
        pairs.append(
            {"qid": q["qid"], "claim": q["question"], "doc": other, "label": 0, "set": "random", "split": split}
        )
        tokens = bm25s.tokenize([q["question"]], stopwords="en", stemmer=stemmer, show_progress=False)
        rows, _ = index.retrieve(tokens, k=10, show_progress=False)
        topical = next(ids[r] for r in rows[0] if ids[r] not in gold)
        pairs.append(
            {"qid": q["qid"], "claim": q["question"], "doc": topical, "label": 0, "set": "topical", "split": split}
        )
    return pairs


def balanced_accuracy(pos_scores: np.ndarray, neg_scores: np.ndarray, threshold: float) -> float:
    tpr = float(np.mean(pos_scores >= threshold)) if len(pos_scores) else float("nan")
    tnr = float(np.mean(neg_scores < threshold)) if len(neg_scores) else float("nan")
    return round((tpr + tnr) / 2, 4)


def run(
    questions_path: Path,
    corpus_paths: Path | list[Path],
    embedder: Embedder,
    seed: int = 0,
    write_params: Path | None = None,
) -> dict[str, Any]:
    corpus = {}
    for corpus_path in [corpus_paths] if isinstance(corpus_paths, Path) else corpus_paths:
        for rec in read_jsonl(corpus_path):
            title = rec.get("title") or ""
            corpus[rec["doc_id"]] = (f"{title}. " if title else "") + (rec.get("abstract") or rec.get("text") or "")
    questions = read_jsonl(questions_path)
    pairs = build_pairs(questions, corpus, seed)
    judge = OfflineJudge(embedder, params={"relevance": {"bias": 0.0}})
    X, XB = [], []
    for p in pairs:
        passages = [corpus[p["doc"]]]
        feats = judge.features(p["claim"], passages)[0]
        X.append(feats)
        XB.append(judge.polarity_features(p["claim"], passages, feats))
    Xa, XBa = np.vstack(X), np.vstack(XB)
    y = np.array([p["label"] for p in pairs], dtype=float)
    splits = np.array([p["split"] for p in pairs])
    sets = np.array([p["set"] for p in pairs])
    calib = splits == "train"
    report_split = ~calib if (~calib).any() else calib
    # relevance: supported vs. unrelated or merely on-topic; polarity: supported vs. contradicted
    on_topic = sets != "contradicted"
    bias, w = fit_logistic(Xa[calib & on_topic], y[calib & on_topic])
    same_paper = (sets == "positive") | (sets == "contradicted")
    pbias, pw = fit_logistic(XBa[calib & same_paper], y[calib & same_paper])
    # as in OfflineJudge.support: a claim quoted word for word from its passage skips the polarity model
    verbatim = np.array([quoted(p["claim"], [corpus[p["doc"]]]) for p in pairs])
    polarity = np.where(verbatim, 1.0, 1 / (1 + np.exp(-(XBa @ pw + pbias))))
    scores = 1 / (1 + np.exp(-(Xa @ w + bias))) * polarity
    # threshold: best mean balanced accuracy over the three negative sets on the calibration pairs
    grid = np.linspace(0.05, 0.95, 91)
    cal_pos = scores[calib & (sets == "positive")]
    threshold = float(
        max(
            grid,
            key=lambda t: np.mean(
                [
                    balanced_accuracy(cal_pos, scores[calib & (sets == s)], t)
                    for s in ("random", "topical", "contradicted")
                ]
            ),
        )
    )
    out: dict[str, Any] = {
        "judge": OfflineJudge.name,
        "calibration_split": "train",
        "report_split": "dev" if (~calib).any() else "train",
        "threshold": round(threshold, 3),
        "n_pairs": {
            s: int(((sets == s) & report_split).sum()) for s in ("positive", "random", "topical", "contradicted")
        },
        "n_pairs_calibration": int(calib.sum()),
        "balanced_accuracy": {},
        "relevance_only": {},
        "weights": {
            "relevance": {
                "bias": round(float(bias), 4),
                **{f: round(float(v), 4) for f, v in zip(FEATURES, w, strict=True)},
            },
            "polarity": {
                "bias": round(float(pbias), 4),
                **{f: round(float(v), 4) for f, v in zip(POLARITY_FEATURES, pw, strict=True)},
            },
        },
    }
    pos = scores[report_split & (sets == "positive")]
    relevance = 1 / (1 + np.exp(-(Xa @ w + bias)))
    rel_pos = relevance[calib & (sets == "positive")]
    rel_threshold = float(max(grid, key=lambda t: balanced_accuracy(rel_pos, relevance[calib & (y == 0)], t)))
    for name in ("random", "topical", "contradicted"):
        out["balanced_accuracy"][name] = balanced_accuracy(pos, scores[report_split & (sets == name)], threshold)
        # the relevance model alone, as a baseline measured in the same run
        out["relevance_only"][name] = balanced_accuracy(
            relevance[report_split & (sets == "positive")], relevance[report_split & (sets == name)], rel_threshold
        )
    if write_params:
        write_params.write_text(
            json.dumps(
                {
                    **out["weights"],
                    "threshold": out["threshold"],
                    "fitted_on": "SciFact train split (rag eval --what checker)",
                },
                indent=2,
            )
            + "\n"
        )
    return out


def markdown(section: dict[str, Any]) -> str:
    ba = section["balanced_accuracy"]
    n = section["n_pairs"]
    return (
        f"## Checker (judge `{section['judge']}`, fitted on {section['calibration_split']}, reported on {section['report_split']}; "
        f"threshold {section['threshold']})\n\n"
        "| negative set | balanced accuracy | relevance model alone | positives | negatives |\n"
        "| --- | --- | --- | --- | --- |\n"
        + "\n".join(
            f"| {k} | {v:.3f} | {section['relevance_only'][k]:.3f} | {n['positive']} | {n[k]} |" for k, v in ba.items()
        )
        + "\n"
    )
