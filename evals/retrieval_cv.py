"""Choose the retrieval fusion by cross-validation across protocols, then report the held-out splits once.

    python -m evals.retrieval_cv [--out eval-out/retrieval-cv] [--home DIR] [--folds 5]

Protocols, each with its calibration split (used to choose) and its held-out split (reported once):

- SciFact claims with evidence, and SciFact under BEIR's protocol (every claim; one without evidence is
  scored against the papers its source sentence cites): calibration ``train``, held out ``dev``;
- PubMedQA: calibration ``cv``, held out ``test``;
- ScholarQA-Multi, which has no split: half its questions by a hash of their id, so the halves never move.
  Reported also without the 10 questions whose expert answer belongs to another question
  (:func:`evals.retrieval.answered_elsewhere`), a report-only protocol that is not part of the objective.

Each dataset's corpus is its own collection. Every question's candidates are fetched once, at the
largest depth of the grid; each configuration then re-ranks them with :func:`rag.retrieve.fuse`, the
function the retriever runs, so what is chosen here is what ``rag`` does. The objective is the mean over
protocols of paper-level nDCG@10 (each protocol counts the same, however many questions it has).
Folds group a question's protocols together, so a SciFact claim is never chosen on and scored on at once.
The candidates are the retriever's without the query adapter: the adapter was fitted on these calibration
splits, so with it every calibration figure is in-sample (its fusion choice is :mod:`evals.fit_adapter`'s).
"""

from __future__ import annotations

import argparse
import json
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from evals.common import bootstrap_ci, load_questions
from evals.retrieval import protocols
from rag.datasets import find_local
from rag.indexing import ingest
from rag.retrieve import Retriever, System, fuse, papers_by_best_chunk
from rag.settings import RetrieveSettings, Settings

DEPTHS = (25, 50, 100, 200)
WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
RRF_KS = (10, 30, 60)
DATASETS = ("scifact", "pubmedqa", "scholarqa_multi")
CALIBRATION = {"scifact": "train", "pubmedqa": "cv"}  # official split used to choose; the other is held out
# Protocols reported beside the others but never part of the objective (a subset of a dataset's questions would
# count those twice), with the suffix their rows' protocol name takes
REPORT_ONLY = {"answer_on_question": "on-question"}


def grid() -> list[dict[str, Any]]:
    """Every configuration tried: convex fusion by weight, and RRF by constant, each at every depth."""
    out: list[dict[str, Any]] = []
    for depth in DEPTHS:
        out += [{"fusion": "convex", "dense_weight": w, "candidates": depth} for w in WEIGHTS]
        out += [{"fusion": "rrf", "rrf_k": k, "candidates": depth} for k in RRF_KS]
    return out


def split_of(dataset: str, q: dict[str, Any]) -> str:
    """``calib`` or ``held`` for a question."""
    official = (q.get("meta") or {}).get("official_split")
    if dataset in CALIBRATION:
        return "calib" if official == CALIBRATION[dataset] else "held"
    return "calib" if zlib.crc32(q["qid"].encode()) % 2 == 0 else "held"


def ndcg10(ranked: list[str], gold: set[str]) -> float:
    """Binary-relevance nDCG@10 (what trec_eval's ndcg_cut_10 gives with 0/1 judgements)."""
    dcg = sum(1 / math.log2(i + 2) for i, doc in enumerate(ranked[:10]) if doc in gold)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(gold), 10)))
    return dcg / ideal if ideal else 0.0


def at_depth(items: list[dict[str, Any]], depth: int) -> list[dict[str, Any]]:
    """The candidates a retriever fetching ``depth`` from each side would have had."""
    out = []
    for item in items:
        kept = {"chunk": item["chunk"]}
        for side in ("dense", "bm25"):
            rank = item.get(f"{side}_rank")
            if rank is not None and rank <= depth:
                kept |= {f"{side}_score": item[f"{side}_score"], f"{side}_rank": rank}
        if len(kept) > 1:
            out.append(kept)
    return out


def collect(data_dir: Path | None, settings: Settings, limit: int | None) -> list[dict[str, Any]]:
    """Per question and protocol: its dataset, split, gold papers and candidates (fetched once per question)."""
    rows: list[dict[str, Any]] = []
    for dataset in DATASETS:
        corpus = find_local(dataset, "corpus.jsonl", data_dir=data_dir)
        questions_path = find_local(dataset, "questions.jsonl", data_dir=data_dir)
        if corpus is None or questions_path is None:
            print(f"{dataset}: not found, left out")
            continue
        ingest([corpus], collection=dataset, settings=settings, progress=True)
        retriever = Retriever(settings, collection=dataset)
        fetched: dict[str, list[dict[str, Any]]] = {}
        for protocol, qs in protocols(load_questions(questions_path, limit=limit)).items():
            name = protocol_name(dataset, protocol)
            for q in qs:
                if q["qid"] not in fetched:
                    fetched[q["qid"]] = retriever.candidates(q["question"], n=max(DEPTHS))
                rows.append(
                    {"protocol": name, "qid": f"{dataset}:{q['qid']}", "split": split_of(dataset, q)}
                    | {"dataset": dataset, "question": q["question"], "report_only": protocol in REPORT_ONLY}
                    | {"gold": set(q["gold_doc_ids"]), "items": fetched[q["qid"]]}
                )
        print(f"{dataset}: {len(fetched)} questions")
    return rows


def protocol_name(dataset: str, protocol: str) -> str:
    """A row's protocol: the dataset's name, or SciFact's two, or a report-only subset's."""
    if dataset == "scifact":
        return f"scifact-{'evidence' if protocol == 'gold' else protocol}"
    return dataset if protocol == "gold" else f"{dataset}-{REPORT_ONLY.get(protocol, protocol)}"


def scores(rows: list[dict[str, Any]], config: dict[str, Any]) -> list[float]:
    """nDCG@10 of every row under ``config``."""
    opts = RetrieveSettings(**config)
    return [fused_ndcg(at_depth(r["items"], opts.candidates), opts, "hybrid", r["gold"]) for r in rows]


def fused_ndcg(items: list[dict[str, Any]], opts: RetrieveSettings, system: System, gold: set[str]) -> float:
    """nDCG@10 of the papers ``items`` rank, fused as the retriever fuses them."""
    return ndcg10([doc for doc, _ in papers_by_best_chunk(fuse(items, opts, system))], gold)


def macro(rows: list[dict[str, Any]], values: list[float], keep: Any) -> float:
    """Mean over protocols of the mean nDCG@10 of the rows ``keep`` admits."""
    by: dict[str, list[float]] = {}
    for r, v in zip(rows, values, strict=True):
        if keep(r) and not r.get("report_only"):
            by.setdefault(r["protocol"], []).append(v)
    return float(np.mean([np.mean(v) for v in by.values()]))


def fold_of(row: dict[str, Any], folds: int) -> int:
    """A question's fold, by a hash of its id: its protocols share it, and it never moves between runs."""
    return zlib.crc32(row["qid"].encode()) % folds


def cross_validate(rows: list[dict[str, Any]], table: list[list[float]], folds: int) -> dict[str, Any]:
    """Choose on all folds but one, score the one left out; the estimate of the procedure and what it chose."""
    held_out_values = [0.0] * len(rows)
    chosen = []
    for f in range(folds):
        best = max(
            range(len(table)),
            key=lambda c: macro(rows, table[c], lambda r, f=f: r["split"] == "calib" and fold_of(r, folds) != f),
        )
        chosen.append(best)
        for i, r in enumerate(rows):
            if r["split"] == "calib" and fold_of(r, folds) == f:
                held_out_values[i] = table[best][i]
    estimate = macro(rows, held_out_values, lambda r: r["split"] == "calib")
    return {"estimate": estimate, "chosen_per_fold": chosen}


def per_protocol(rows: list[dict[str, Any]], values: list[float], split: str, seed: int = 0) -> dict[str, Any]:
    """Mean nDCG@10 and its bootstrap interval per protocol, on one split."""
    by: dict[str, list[float]] = {}
    for r, v in zip(rows, values, strict=True):
        if r["split"] == split:
            by.setdefault(r["protocol"], []).append(v)
    return {
        p: {"n": len(v), "ndcg@10": round(float(np.mean(v)), 4), "ci95": bootstrap_ci(v, seed)} for p, v in by.items()
    }


def run(rows: list[dict[str, Any]], folds: int = 5) -> dict[str, Any]:
    """The whole selection and its report."""
    configs = grid()
    table = [scores(rows, c) for c in configs]
    calib = [macro(rows, t, lambda r: r["split"] == "calib") for t in table]
    cv = cross_validate(rows, table, folds)
    best = int(np.argmax(calib))
    default = configs.index(_default_config())
    # the baselines of the held-out table: each retriever alone, and plain RRF, beside the chosen and the default
    baselines = {
        "bm25": _single(rows, "bm25"),
        "dense": _single(rows, "dense"),
        "rrf (k=60)": table[configs.index({"fusion": "rrf", "rrf_k": 60, "candidates": 100})],
    }
    held = {"chosen": table[best], "default": table[default], **baselines}
    return {
        "folds": folds,
        "grid": [{**c, "calib_macro_ndcg@10": round(v, 4)} for c, v in zip(configs, calib, strict=True)],
        "cv_estimate_of_selection": round(cv["estimate"], 4),
        "default_calib_macro_ndcg@10": round(calib[default], 4),
        "chosen_per_fold": [configs[c] for c in cv["chosen_per_fold"]],
        "chosen": configs[best],
        "default": configs[default],
        "calibration": {name: per_protocol(rows, v, "calib") for name, v in held.items()},
        "held_out": {name: per_protocol(rows, v, "held") for name, v in held.items()},
    }


def _default_config() -> dict[str, Any]:
    d = RetrieveSettings()
    if d.fusion == "rrf":
        return {"fusion": "rrf", "rrf_k": d.rrf_k, "candidates": d.candidates}
    return {"fusion": "convex", "dense_weight": d.dense_weight, "candidates": d.candidates}


def _single(rows: list[dict[str, Any]], system: System) -> list[float]:
    """nDCG@10 of every row with one retriever alone (its own candidates, at the default depth)."""
    opts = RetrieveSettings()
    own = [[it for it in at_depth(r["items"], opts.candidates) if f"{system}_score" in it] for r in rows]
    return [fused_ndcg(items, opts, system, r["gold"]) for items, r in zip(own, rows, strict=True)]


def markdown(report: dict[str, Any]) -> str:
    names = list(report["held_out"])
    protos = list(report["held_out"]["chosen"])
    lines = [
        f"Chosen by {report['folds']}-fold cross-validation on the calibration splits: `{report['chosen']}` "
        f"(the default is `{report['default']}`). Cross-validation estimate of choosing: "
        f"{report['cv_estimate_of_selection']:.4f}, against {report['default_calib_macro_ndcg@10']:.4f} for the default.",
        "",
    ]
    for part, title in (("calibration", "Calibration splits"), ("held_out", "Held-out splits (reported once)")):
        lines += [f"### {title}", "", "| system | " + " | ".join(protos) + " |", "| --- |" + " --- |" * len(protos)]
        for name in names:
            cells = [report[part][name].get(p) for p in protos]
            lines.append(
                f"| {name} | "
                + " | ".join(
                    f"{c['ndcg@10']:.3f} ({c['ci95'][0]:.3f}–{c['ci95'][1]:.3f}), n={c['n']}" if c else "–"
                    for c in cells
                )
                + " |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("eval-out/retrieval-cv"))
    parser.add_argument("--home", type=Path, help="Store folder (default: OUT/store, reused next time).")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--limit", type=int, help="Questions per dataset (a seeded sample), for a quick look.")
    args = parser.parse_args()
    settings = Settings().with_retrieve(query_adapter=False)  # see the module's docstring
    settings = settings.model_copy(update={"home": args.home or args.out / "store", "chroma_url": None})
    rows = collect(settings.data_dir, settings, args.limit)
    if not rows:
        raise SystemExit("No dataset found: set RAG_DATA_DIR to the folder holding scifact/, pubmedqa/ …")
    report = run(rows, args.folds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "retrieval_cv.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "retrieval_cv.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
