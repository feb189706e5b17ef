"""Shared pieces of the eval suite: questions, the eval collection, bootstrap intervals, reports."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RecordError
from rag.indexing import ingest
from rag.settings import Settings
from rag.types import IngestReport

EVAL_COLLECTION = "eval"


def load_questions(path: Path, limit: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Questions in the shared format (`qid`, `question`, `gold_doc_ids`, `label`?, `long_answer`?).

    With ``limit``, a seeded random sample (the same for the same seed), kept in file order.
    """
    questions = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{path}:{lineno}", f"invalid JSON: {exc.msg}") from None
        if not isinstance(q, dict) or not q.get("question"):
            raise RecordError(f"{path}:{lineno}", "a question needs a `question` field")
        q.setdefault("qid", f"q{lineno}")
        q.setdefault("gold_doc_ids", [])
        questions.append(q)
    if limit and limit < len(questions):
        keep = set(random.Random(seed).sample(range(len(questions)), limit))
        questions = [q for i, q in enumerate(questions) if i in keep]
    return questions


def eval_settings(out: Path, base: Settings | None = None) -> Settings:
    """Settings whose store lives under the eval's output folder (reused by the next run)."""
    base = base or Settings()
    return base.model_copy(update={"home": out / "store", "chroma_url": None})


def prepare_collection(corpora: Sequence[Path], settings: Settings, progress: bool = True) -> IngestReport:
    """Ingest the corpora into the eval collection (a no-op when they are already there)."""
    return ingest(corpora, collection=EVAL_COLLECTION, settings=settings, progress=progress)


def bootstrap_ci(values: Sequence[float], seed: int = 0, n: int = 1000, alpha: float = 0.05) -> list[float]:
    """Percentile bootstrap confidence interval of the mean."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n, arr.size))].mean(axis=1)
    return [round(float(np.quantile(means, alpha / 2)), 4), round(float(np.quantile(means, 1 - alpha / 2)), 4)]


RELIABILITY_BINS = 10  # equal-width bins of predicted probability, as in the usual reliability diagram


def reliability(
    predicted: Sequence[float] | np.ndarray, observed: Sequence[float] | np.ndarray, bins: int = RELIABILITY_BINS
) -> dict[str, Any]:
    """Binned predicted probability against the observed rate, and the expected calibration error
    (the bins' |predicted - observed| weighted by their share of the cases)."""
    p, o = np.asarray(predicted, dtype=float), np.asarray(observed, dtype=float)
    if p.size == 0:
        return {"ece": None, "n": 0, "bins": []}
    which = np.minimum((p * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            gap = abs(float(p[m].mean()) - float(o[m].mean()))
            ece += gap * m.sum() / p.size
            rows.append(
                {
                    "from": b / bins,
                    "to": (b + 1) / bins,
                    "n": int(m.sum()),
                    "predicted": round(float(p[m].mean()), 4),
                    "observed": round(float(o[m].mean()), 4),
                }
            )
    return {"ece": round(ece, 4), "n": int(p.size), "bins": rows}


def read_jsonl(path: Path) -> list[Any]:
    """The records of a JSON-lines file (blank lines skipped; split on newlines only, not U+2028)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def write_jsonl(path: Path, rows: Sequence[Any]) -> None:
    """Write one JSON record per line (UTF-8, non-ASCII kept as is)."""
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def merge_report(out: Path, section: str, data: dict[str, Any]) -> dict[str, Any]:
    """Write ``data`` under ``section`` of ``out/report.json``, keeping the other sections."""
    path = out / "report.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    report[section] = data
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report
