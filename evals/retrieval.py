"""Retrieval eval: paper-level nDCG@10, recall@10/100, MRR@10 and latency per system.

Metrics come from ``ir-measures`` (backed by trec_eval). Each question's gold papers are its
``gold_doc_ids``; questions without any are skipped. SciFact is scored under two protocols
(:func:`protocols`): its claims with evidence, and BEIR's, where claims without evidence count against
the papers their source sentence cites. Besides the three headline systems
(``hybrid`` — the default —, ``bm25``, ``dense``) the table lists ablations, so each trick the
default uses shows its own gain in the same run.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import ir_measures
import numpy as np
from ir_measures import RR, R, nDCG

from evals.common import EVAL_COLLECTION, bootstrap_ci
from rag.lexical import analyze
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


def protocols(questions: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The question sets to score, each question with the gold papers of that protocol.

    ``gold``: the questions that have gold papers (for SciFact, the claims with evidence). ``beir``, when the
    questions carry ``meta.cited_doc_ids`` (SciFact): every question, scored against its gold papers or, having
    none, the papers its source sentence cites — BEIR's protocol for SciFact, where claims without evidence
    count too."""
    out = {"gold": [q for q in questions if q.get("gold_doc_ids")]}
    if any((q.get("meta") or {}).get("cited_doc_ids") for q in questions):
        beir = [
            {**q, "gold_doc_ids": q.get("gold_doc_ids") or (q.get("meta") or {}).get("cited_doc_ids") or []}
            for q in questions
        ]
        out["beir"] = [q for q in beir if q["gold_doc_ids"]]
    elsewhere = answered_elsewhere(out["gold"])
    if elsewhere:
        out["answer_on_question"] = [q for q in out["gold"] if q["qid"] not in elsewhere]
    return out


# The share of a set's other answers that may be closer to a question than its own: on ScholarQA-Multi at
# most 5 of 107 are for each of the 98 answers on their question, and 31 or more for the 10 on another.
ELSEWHERE_RANK = 0.25


def answered_elsewhere(questions: list[dict[str, Any]]) -> set[str]:
    """The ids of questions whose expert answer, and so the cited papers that are their gold, is about another
    question: among the set's answers that cite papers (``long_answer`` with ``meta.citations``), at least a
    share ``ELSEWHERE_RANK`` of the others are as close to the question (tf-idf cosine over the BM25 terms). No
    retriever can find such gold papers: ScholarQA-Multi's upstream file pairs its 10 HCI questions with
    photonics answers and their citations."""
    cited = [q for q in questions if q.get("long_answer") and (q.get("meta") or {}).get("citations")]
    if len(cited) < 2:
        return set()
    answers = [Counter(analyze(q["long_answer"])) for q in cited]
    df = Counter(term for a in answers for term in a)
    idf = {term: math.log(len(answers) / n) for term, n in df.items()}
    vocab = {term: j for j, term in enumerate(idf)}
    matrix = np.stack([_unit(a, idf, vocab) for a in answers])
    out = set()
    for i, q in enumerate(cited):
        sims = matrix @ _unit(Counter(analyze(q["question"])), idf, vocab)
        # answers at least as similar: one sharing no term with its question ties with every stranger
        if int((sims >= sims[i]).sum()) - 1 >= ELSEWHERE_RANK * len(cited):
            out.add(q["qid"])
    return out


def _unit(counts: Counter[str], idf: dict[str, float], vocab: dict[str, int]) -> np.ndarray:
    """A tf-idf vector over ``vocab``, of unit length (zero when no term is known)."""
    v = np.zeros(len(vocab))
    for term, n in counts.items():
        if term in vocab:
            v[vocab[term]] = n * idf[term]
    norm = np.linalg.norm(v)
    return v / norm if norm else v


def asked(sets: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The questions any protocol of ``sets`` (:func:`protocols`) scores, by id: each is ranked once per system."""
    return {q["qid"]: q for qs in sets.values() for q in qs}


def run(
    questions: list[dict[str, Any]],
    settings: Settings,
    systems: dict[str, tuple[System, dict[str, Any]]] | None = None,
    progress: Any = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Score every system under every protocol of :func:`protocols`; returns the report section (the ``gold``
    protocol's figures at the top level, every protocol's under ``protocols``)."""
    systems = systems or SYSTEMS
    sets = protocols(questions)
    ranked_once = asked(sets)
    out: dict[str, Any] = {"n_questions": len(sets["gold"]), "default": "hybrid", "systems": {}, "protocols": {}}
    rankings: dict[str, dict[str, list[tuple[str, float]]]] = {}
    latency: dict[str, list[float]] = {}
    for name, (system, overrides) in systems.items():
        retriever = Retriever(settings.with_retrieve(**overrides), collection=EVAL_COLLECTION)
        retriever.rank_papers("warm-up query", system=system)  # loads models and indexes outside the timing
        rankings[name], latency[name] = {}, []
        for qid, q in ranked_once.items():
            t0 = time.perf_counter()
            rankings[name][qid] = retriever.rank_papers(q["question"], k=100, system=system)
            latency[name].append((time.perf_counter() - t0) * 1000)
            if progress:
                progress()
    for protocol, qs in sets.items():
        scored = {
            name: {**score(qs, rankings[name], seed), "config": {"system": system, **overrides}}
            for name, (system, overrides) in systems.items()
        }
        for name in scored:
            scored[name]["latency_ms_p50"] = round(float(np.percentile(latency[name], 50)), 2)
            scored[name]["latency_ms_p95"] = round(float(np.percentile(latency[name], 95)), 2)
        out["protocols"][protocol] = {"n_questions": len(qs), "systems": scored}
    out["systems"] = out["protocols"]["gold"]["systems"]
    out["per_question_ndcg@10"] = {name: m.pop("per_question") for name, m in out["systems"].items()}
    for other in out["protocols"].values():
        for m in other["systems"].values():
            m.pop("per_question", None)
    return out


def score(questions: list[dict[str, Any]], ranked: dict[str, list[tuple[str, float]]], seed: int = 0) -> dict[str, Any]:
    """The measures of one system's paper rankings (``qid`` -> ranked papers) against ``questions``' gold."""
    qrels = [ir_measures.Qrel(q["qid"], doc, 1) for q in questions for doc in q["gold_doc_ids"]]
    run_docs = [ir_measures.ScoredDoc(q["qid"], doc, s) for q in questions for doc, s in ranked[q["qid"]]]
    agg = ir_measures.calc_aggregate(list(MEASURES.values()), qrels, run_docs)
    ndcg_per_q = {m.query_id: m.value for m in ir_measures.iter_calc([nDCG @ 10], qrels, run_docs)}
    values = [ndcg_per_q.get(q["qid"], 0.0) for q in questions]
    splits: dict[str, list[float]] = {}
    for q, v in zip(questions, values, strict=True):
        split = (q.get("meta") or {}).get("official_split")
        if split:
            splits.setdefault(str(split), []).append(v)
    return {
        **{label: round(float(agg[measure]), 4) for label, measure in MEASURES.items()},
        "ndcg@10_ci95": bootstrap_ci(values, seed=seed),
        "ndcg@10_by_split": {k: round(float(np.mean(v)), 4) for k, v in sorted(splits.items())},
        "per_question": {q["qid"]: v for q, v in zip(questions, values, strict=True)},
    }


PROTOCOL_TITLES = {
    "gold": "questions with gold papers",
    "beir": "BEIR protocol: every claim, without evidence against its cited papers",
    "answer_on_question": "questions whose expert answer is on them (see answered_elsewhere)",
}


def markdown(section: dict[str, Any]) -> str:
    lines = [f"## Retrieval (default: `{section['default']}`)", ""]
    for protocol, part in (section.get("protocols") or {"gold": section}).items():
        lines += [
            f"### {PROTOCOL_TITLES.get(protocol, protocol)} ({part['n_questions']})",
            "",
            "| system | nDCG@10 (95% CI) | nDCG@10 by split | recall@10 | recall@100 | MRR@10 | p50 ms | p95 ms |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name, m in part["systems"].items():
            lo, hi = m["ndcg@10_ci95"]
            by_split = ", ".join(f"{k} {v:.3f}" for k, v in m.get("ndcg@10_by_split", {}).items()) or "–"
            lines.append(
                f"| {name} | {m['ndcg@10']:.3f} ({lo:.3f}–{hi:.3f}) | {by_split} | {m['recall@10']:.3f} | "
                f"{m['recall@100']:.3f} | {m['mrr@10']:.3f} | {m['latency_ms_p50']:.1f} | {m['latency_ms_p95']:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)
