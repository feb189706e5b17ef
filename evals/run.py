"""`rag eval`: ingest a corpus once under DIR, run the requested parts, write DIR/report.{json,md}."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals import answers, checker, decision, plots, retrieval
from evals.common import EVAL_COLLECTION, eval_settings, load_questions, merge_report, prepare_collection
from rag.errors import ConfigError
from rag.estimate import Estimate
from rag.pipeline import pipeline_for
from rag.settings import Settings

PARTS = ("retrieval", "answer", "checker", "decision")


def run_eval(
    corpora: Sequence[Path],
    questions_path: Path,
    out: Path,
    what: Sequence[str] = PARTS,
    limit: int | None = None,
    seed: int = 0,
    settings: Settings | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the eval parts in ``what``; returns the whole report (also written to ``out``)."""
    unknown = [w for w in what if w not in PARTS]
    if unknown:
        raise ConfigError(f"Unknown eval part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}.")
    out.mkdir(parents=True, exist_ok=True)
    settings = eval_settings(out, settings)
    t0 = time.perf_counter()
    # the checker part reads the corpus files itself: no store to build for it alone
    ingest = prepare_collection(corpora, settings, progress=progress) if set(what) - {"checker"} else None
    questions = load_questions(questions_path, limit=limit, seed=seed)
    report: dict[str, Any] = {}
    meta = {
        "corpora": [str(c) for c in corpora],
        "questions": str(questions_path),
        "n_questions_loaded": len(questions),
        "limit": limit,
        "seed": seed,
        "ingest_seconds": round(ingest.seconds, 1) if ingest else 0.0,
        "papers_ingested_now": ingest.papers_added if ingest else 0,
    }
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        if "retrieval" in what:
            n = len(retrieval.asked(retrieval.protocols(questions))) * len(retrieval.SYSTEMS)
            task = bar.add_task("retrieval", total=n)
            t1 = time.perf_counter()
            section = retrieval.run(questions, settings, progress=lambda: bar.advance(task), seed=seed)
            section["seconds"] = round(time.perf_counter() - t1, 1)
            report = merge_report(out, "retrieval", section)
        if "answer" in what:
            task = bar.add_task("answers", total=len(questions))
            t1 = time.perf_counter()
            section = answers.run(questions, settings, out, progress=lambda: bar.advance(task), seed=seed)
            section["seconds"] = round(time.perf_counter() - t1, 1)
            report = merge_report(out, "answer", section)
        if "checker" in what:
            from rag.embed import LocalEmbedder

            t1 = time.perf_counter()
            section = checker.run(questions_path, list(corpora), LocalEmbedder(), seed=seed)
            section["seconds"] = round(time.perf_counter() - t1, 1)
            report = merge_report(out, "checker", section)
        if "decision" in what:
            task = bar.add_task("decisions", total=sum(1 for q in questions if q.get("label")))
            t1 = time.perf_counter()
            decided = decision.run(questions, settings, out, progress=lambda: bar.advance(task), seed=seed)
            if decided is None:
                raise ConfigError(
                    f"--what decision needs labelled questions (yes/no/maybe or SUPPORT/CONTRADICT/NOT_ENOUGH_INFO) in {questions_path}."
                )
            decided["seconds"] = round(time.perf_counter() - t1, 1)
            report = merge_report(out, "decision", decided)
    meta["seconds"] = round(time.perf_counter() - t0, 1)
    report = merge_report(out, "meta", meta)
    meta["plots"] = [p.name for p in plots.write_plots(out, report)]
    report = merge_report(out, "meta", meta)
    write_markdown(out, report)
    return report


def estimate_eval(
    corpora: Sequence[Path], questions_path: Path, out: Path, limit: int | None = None, seed: int = 0
) -> Estimate:
    """What ``--what answer`` would cost with the configured model, over the same questions; no model is called
    (the corpus is ingested, as for the eval itself, so that retrieval finds what the answers would use)."""
    settings = eval_settings(out, None)
    prepare_collection(corpora, settings)
    pipeline = pipeline_for(settings)
    total: Estimate | None = None
    for q in load_questions(questions_path, limit=limit, seed=seed):
        one = pipeline.estimate(q["question"], collection=EVAL_COLLECTION, settings=settings)
        total = one if total is None else total.plus(one)
    if total is None:
        raise ConfigError(f"{questions_path}: no questions to estimate")
    return total


def write_markdown(out: Path, report: dict[str, Any]) -> None:
    parts = ["# Eval report", ""]
    meta = report.get("meta", {})
    if meta:
        parts.append(
            f"Corpora: {', '.join(meta['corpora'])}  \nQuestions: {meta['questions']} ({meta['n_questions_loaded']} loaded)\n"
        )
    if "retrieval" in report:
        parts.append(retrieval.markdown(report["retrieval"]))
    if "answer" in report:
        parts.append(answers.markdown(report["answer"]))
    if "checker" in report:
        parts.append(checker.markdown(report["checker"]))
    if "decision" in report:
        parts.append(decision.markdown(report["decision"]))
    if meta.get("plots"):
        parts.append("Plots: " + ", ".join(f"[{p}]({p})" for p in meta["plots"]) + "\n")
    (out / "report.md").write_text("\n".join(parts))
