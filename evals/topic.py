"""Choose the checker's on-question cut (``check.on_question``) by cross-validation, then report the
held-out split once.

    python -m evals.topic [--data ../shared/data] [--json eval-out/topic.json]

Positives are expert answer sentences scored against their own question: PubMedQA's conclusions
(``long_answer``) and ScholarQA-Multi's synthesis answers, read as the checker reads an answer (each
sentence with the one before it, citation markers stripped). Negatives are the same sentences
scored against another question: a random one, and the nearest one of the same data set (by the
questions' embeddings) — the adjacent topic a retrieved passage drifts to. The cut is the highest one
that lets :data:`PASS` of the calibration positives through (a claim wrongly set aside costs the
reader more than an off-question one kept); folds and the held-out split are those of
:mod:`evals.retrieval_cv` (PubMedQA ``cv`` / ``test``, ScholarQA-Multi halves by a hash of the id).
"""

from __future__ import annotations

import argparse
import json
import random
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from evals.common import read_jsonl
from evals.retrieval_cv import split_of
from rag.check import OnQuestion, needs_citation
from rag.embed import CachedEmbedder, LocalEmbedder
from rag.lang.citations import strip_markers
from rag.lang.sentences import split_sentences
from rag.settings import Settings
from rag.types import Sentence

PASS = 0.975  # share of expert answer sentences the cut must let through
GRID = np.round(np.arange(-0.1, 0.41, 0.01), 2)
DATASETS = ("pubmedqa", "scholarqa_multi")


def sentences_of(answer: str) -> list[tuple[str, str]]:
    """(previous sentence, sentence) for each claim-length sentence of an answer, markers stripped."""
    texts = [strip_markers(s) for s in split_sentences(answer)]
    return [(texts[i - 1] if i else "", t) for i, t in enumerate(texts) if needs_citation(Sentence(text=t))]


def collect(data: Path, fit: OnQuestion, seed: int = 0) -> list[dict[str, Any]]:
    """Per answer sentence: its dataset, split, fold, and its score against its own, a random and the nearest other question."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for dataset in DATASETS:
        path = data / dataset / "questions.jsonl"
        if not path.exists():
            continue
        questions = [q for q in read_jsonl(path) if q.get("long_answer")]
        Q = fit.embedder.embed([q["question"] for q in questions])
        sims = Q @ Q.T
        np.fill_diagonal(sims, -np.inf)
        for i, q in enumerate(questions):
            pairs = sentences_of(q["long_answer"])
            if not pairs:
                continue
            other = questions[rng.choice([j for j in range(len(questions)) if j != i])]["question"]
            nearest = questions[int(np.argmax(sims[i]))]["question"]
            scored = [fit.scores(x, pairs) for x in (q["question"], other, nearest)]
            fold = zlib.crc32(q["qid"].encode()) % 5
            for own, rand, near in zip(*scored, strict=True):
                rows.append(
                    {"dataset": dataset, "split": split_of(dataset, q), "fold": fold}
                    | {"own": own, "random": rand, "nearest": near}
                )
    return rows


def choose(rows: list[dict[str, Any]]) -> float:
    """The highest cut on the grid that lets PASS of these positives through."""
    own = np.array([r["own"] for r in rows])
    return float(max((c for c in GRID if np.mean(own >= c) >= PASS), default=GRID[0]))


def rates(rows: list[dict[str, Any]], cut: float) -> dict[str, float]:
    """Share of positives kept, and of each negative set set aside, at ``cut``."""
    if not rows:
        return {"n": 0}
    get = {k: np.array([r[k] for r in rows]) for k in ("own", "random", "nearest")}
    return {
        "kept": round(float(np.mean(get["own"] >= cut)), 4),
        "random_set_aside": round(float(np.mean(get["random"] < cut)), 4),
        "nearest_set_aside": round(float(np.mean(get["nearest"] < cut)), 4),
        "n": len(rows),
    }


def run(rows: list[dict[str, Any]], folds: int = 5) -> dict[str, Any]:
    calib = [r for r in rows if r["split"] == "calib"]
    cv: dict[str, list[float]] = {}
    for k in range(folds):
        cut = choose([r for r in calib if r["fold"] != k])
        for name, value in rates([r for r in calib if r["fold"] == k], cut).items():
            cv.setdefault(name, []).append(value)
    cut = choose(calib)
    held = [r for r in rows if r["split"] == "held"]
    return {
        "cut": round(cut, 2),
        "pass_target": PASS,
        "calibration_cv": {k: round(float(np.mean(v)), 4) for k, v in cv.items() if k != "n"},
        "held_out": rates(held, cut),
        "held_out_by_dataset": {d: rates([r for r in held if r["dataset"] == d], cut) for d in DATASETS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path, help="Write the figures here too.")
    args = parser.parse_args()
    settings = Settings()
    embed = settings.embed.model_copy(update={"quantize": True, "batch_size": 1})  # what the checker runs
    fit = OnQuestion(CachedEmbedder(LocalEmbedder(embed, settings.cache_dir)), cut=0.0)
    result = run(collect(args.data, fit))
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
