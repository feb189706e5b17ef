"""Answer eval: what each answer cites and how well its citations hold, per question and overall.

Per question: citation recall and precision (ALCE-style, from the checker's receipt), uncited and
invalid-citation rates, ``gold_paper_recall`` (share of the question's ``gold_doc_ids`` the answer
cites), sections, latency, LLM calls and tokens, the drafter. With expert answers (ScholarQA-Multi's
``long_answer``) also ROUGE-L F1 against them. Every headline figure gets a bootstrap 95% interval.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from evals.common import EVAL_COLLECTION, bootstrap_ci, write_jsonl
from rag.pipeline import aanswer
from rag.settings import Settings
from rag.types import Answer

HEADLINES = [
    "citation_recall",
    "citation_precision",
    "uncited_rate",
    "uncited_drafted_rate",
    "invalid_citation_rate",
    "off_question_rate",
    "gold_paper_recall",
    "sections",
    "rougeL_f1",
]


def run(
    questions: list[dict[str, Any]], settings: Settings, out: Path, progress: Any = None, seed: int = 0
) -> dict[str, Any]:
    scorer = None
    if any(q.get("long_answer") for q in questions):
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rows = []

    async def one(q: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            answer = await aanswer(q["question"], collection=EVAL_COLLECTION, settings=settings)
        except Exception as exc:  # one question's failure is a figure of the run, not its end
            return _failed(q, exc, time.perf_counter() - t0)
        return _row(q, answer, time.perf_counter() - t0, scorer)

    async def all_questions() -> None:
        for q in questions:
            rows.append(await one(q))
            if progress:
                progress()

    asyncio.run(all_questions())
    write_jsonl(out / "results.jsonl", rows)
    latency = [r["seconds"] for r in rows]
    section: dict[str, Any] = {
        "n_questions": len(rows),
        "errors": sum(1 for r in rows if r["error"]),
        "answerable": sum(r["answerable"] for r in rows),
        "drafters": sorted({r["drafter"] for r in rows if r["drafter"]}),
        "latency_s_p50": round(float(np.percentile(latency, 50)), 3) if rows else None,
        "latency_s_p95": round(float(np.percentile(latency, 95)), 3) if rows else None,
        "llm_calls_per_answer": round(float(np.mean([r["llm_calls"] for r in rows])), 2) if rows else None,
        "tokens_per_answer": round(float(np.mean([r["tokens"] for r in rows])), 1) if rows else None,
        "metrics": {},
    }
    for name in HEADLINES:
        values = [r[name] for r in rows if r[name] is not None]
        if values:
            section["metrics"][name] = {
                "mean": round(float(np.mean(values)), 4),
                "ci95": bootstrap_ci(values, seed=seed),
                "n": len(values),
            }
    return section


def _row(q: dict[str, Any], answer: Answer, seconds: float, scorer: Any) -> dict[str, Any]:
    """One question's figures."""
    g = answer.grounding
    cited = {s.doc_id for s in answer.sources}
    gold = set(q.get("gold_doc_ids") or [])
    valid = {s.number for s in answer.sources}
    row: dict[str, Any] = {
        "qid": q["qid"],
        "question": q["question"],
        "error": None,
        "answerable": answer.answerable,
        "drafter": answer.drafter,
        "fallback": answer.fallback,
        "distinct_citations": len({n for sec in answer.sections for s in sec.sentences for n in s.citations} & valid),
        "uncited_drafted_rate": g.uncited_drafted_rate if g else None,
        "markdown": answer.markdown,
        "cited_doc_ids": [s.doc_id for s in answer.sources],
        "gold_doc_ids": sorted(gold),
        "gold_paper_recall": len(cited & gold) / len(gold) if gold else None,
        "citation_recall": g.citation_recall if g else None,
        "citation_precision": g.citation_precision if g else None,
        "uncited_rate": g.uncited_rate if g else None,
        "invalid_citation_rate": g.invalid_citation_rate if g else None,
        "off_question_rate": g.off_question_rate if g else None,
        "verdicts": [v.verdict for v in g.sentences] if g else [],
        "scores": [round(v.score, 4) for v in g.sentences if v.citations] if g else [],
        "sections": sum(1 for s in answer.sections if s.title != "Introduction"),
        "seconds": round(seconds, 3),
        "stage_seconds": answer.usage.seconds,
        "llm_calls": answer.usage.llm_calls,
        "tokens": answer.usage.prompt_tokens + answer.usage.completion_tokens,
        "rougeL_f1": None,
        "consensus": answer.consensus.verdict if answer.consensus else None,
        "stances": {p.doc_id: p.stance for p in answer.consensus.papers} if answer.consensus else {},
    }
    if scorer and q.get("long_answer"):
        body = answer.markdown.split("## Sources")[0].split("**Consensus meter")[0]
        row["rougeL_f1"] = round(scorer.score(q["long_answer"], body)["rougeL"].fmeasure, 4)
    return row


def _failed(q: dict[str, Any], exc: Exception, seconds: float) -> dict[str, Any]:
    """A question whose answer raised: counted in ``errors``, in no metric."""
    row: dict[str, Any] = dict.fromkeys(HEADLINES)
    row.update(qid=q["qid"], question=q["question"], error=f"{type(exc).__name__}: {exc}", answerable=False)
    row.update(drafter="", fallback="", seconds=round(seconds, 3), llm_calls=0, tokens=0, distinct_citations=0)
    return row


def markdown(section: dict[str, Any]) -> str:
    lines = [
        f"## Answers ({section['n_questions']} questions, {section['answerable']} answered; drafter {', '.join(section['drafters'])})",
        "",
        f"Latency p50 {section['latency_s_p50']} s, p95 {section['latency_s_p95']} s; {section.get('errors', 0)} failed; "
        f"{section['llm_calls_per_answer']} LLM calls and {section['tokens_per_answer']} tokens per answer.",
        "",
        "| metric | mean | 95% CI | n |",
        "| --- | --- | --- | --- |",
    ]
    for name, m in section["metrics"].items():
        lines.append(f"| {name} | {m['mean']:.3f} | {m['ci95'][0]:.3f}–{m['ci95'][1]:.3f} | {m['n']} |")
    return "\n".join(lines) + "\n"
