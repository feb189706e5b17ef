"""Retrieval eval: paper-level nDCG@10, recall@10/100, MRR@10 and latency per system.

Metrics come from ``ir-measures`` (backed by trec_eval). Each question's gold papers are its
``gold_doc_ids``; questions without any are skipped. Besides the three headline systems
(``hybrid`` — the default —, ``bm25``, ``dense``) the table lists ablations, so each trick the
default uses shows its own gain in the same run.
"""

from __future__ import annotations

import time
from typing import Any

import ir_measures
import numpy as np
from ir_measures import RR, R, nDCG

from evals.common import EVAL_COLLECTION, bootstrap_ci
from rag.retrieve import Retriever, System
from rag.settings import Settings

MEASURES = {"ndcg@10": nDCG @ 10, "recall@10": R @ 10, "recall@100": R @ 100, "mrr@10": RR @ 10}

# name -> (system, retrieve-settings overrides)
# The default (convex fusion of min-max normalised scores, dense weight 0.5) and the baselines,
# then ablations: plain reciprocal rank fusion, and title boosting (tried, no gain: not kept).
SYSTEMS: dict[str, tuple[System, dict[str, Any]]] = {
    "hybrid": ("hybrid", {}),
    "bm25": ("bm25", {}),
    "dense": ("dense", {}),
    "hybrid-rrf": ("hybrid", {"fusion": "rrf"}),
    "hybrid+title": ("hybrid", {"title_weight": 1}),
}


def run(
    questions: list[dict[str, Any]],
    settings: Settings,
    systems: dict[str, tuple[System, dict[str, Any]]] | None = None,
    progress: Any = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Score every system on the questions that have gold papers; returns the report section."""
    systems = systems or SYSTEMS
    scored = [q for q in questions if q.get("gold_doc_ids")]
    qrels = [ir_measures.Qrel(q["qid"], doc, 1) for q in scored for doc in q["gold_doc_ids"]]
    out: dict[str, Any] = {"n_questions": len(scored), "default": "hybrid", "systems": {}}
    per_question: dict[str, dict[str, float]] = {}
    for name, (system, overrides) in systems.items():
        opts = settings.retrieve.model_copy(update=overrides)
        retriever = Retriever(settings.model_copy(update={"retrieve": opts}), collection=EVAL_COLLECTION)
        retriever.rank_papers("warm-up query", system=system)  # loads models and indexes outside the timing
        run_docs: list[ir_measures.ScoredDoc] = []
        latencies: list[float] = []
        for q in scored:
            t0 = time.perf_counter()
            ranked = retriever.rank_papers(q["question"], k=100, system=system)
            latencies.append((time.perf_counter() - t0) * 1000)
            run_docs.extend(ir_measures.ScoredDoc(q["qid"], doc, score) for doc, score in ranked)
            if progress:
                progress()
        agg = ir_measures.calc_aggregate(list(MEASURES.values()), qrels, run_docs)
        ndcg_per_q = {m.query_id: m.value for m in ir_measures.iter_calc([nDCG @ 10], qrels, run_docs)}
        per_question[name] = ndcg_per_q
        values = [ndcg_per_q.get(q["qid"], 0.0) for q in scored]
        splits: dict[str, list[float]] = {}
        for q, v in zip(scored, values, strict=True):
            split = (q.get("meta") or {}).get("official_split")
            if split:
                splits.setdefault(str(split), []).append(v)
        out["systems"][name] = {
            **{label: round(float(agg[measure]), 4) for label, measure in MEASURES.items()},
            "ndcg@10_ci95": bootstrap_ci(values, seed=seed),
            "ndcg@10_by_split": {k: round(float(np.mean(v)), 4) for k, v in sorted(splits.items())},
            "latency_ms_p50": round(float(np.percentile(latencies, 50)), 2),
            "latency_ms_p95": round(float(np.percentile(latencies, 95)), 2),
            "config": {"system": system, **overrides},
        }
    out["per_question_ndcg@10"] = per_question
    return out


def markdown(section: dict[str, Any]) -> str:
    lines = [
        f"## Retrieval ({section['n_questions']} questions with gold papers; default: `{section['default']}`)",
        "",
        "| system | nDCG@10 (95% CI) | nDCG@10 by split | recall@10 | recall@100 | MRR@10 | p50 ms | p95 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in section["systems"].items():
        lo, hi = m["ndcg@10_ci95"]
        by_split = ", ".join(f"{k} {v:.3f}" for k, v in m.get("ndcg@10_by_split", {}).items()) or "–"
        lines.append(
            f"| {name} | {m['ndcg@10']:.3f} ({lo:.3f}–{hi:.3f}) | {by_split} | {m['recall@10']:.3f} | "
            f"{m['recall@100']:.3f} | {m['mrr@10']:.3f} | {m['latency_ms_p50']:.1f} | {m['latency_ms_p95']:.1f} |"
        )
    return "\n".join(lines) + "\n"
