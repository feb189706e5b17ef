"""Retrieval latency on a collection (default: the demo's merged SciFact + PubMedQA collection).

Prints p50/p95/mean per system over real questions, with BM25-only and dense-only measured in the
same run as the baselines the hybrid is compared with, and the hybrid without the query adapter (the
cost of the adapter's one 384 x 384 product).

    python benchmarks/retrieval.py [--collection demo] [--n 400]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.datasets import find_local  # noqa: E402
from rag.retrieve import Retriever  # noqa: E402
from rag.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", default="demo")
    parser.add_argument("--n", type=int, default=400, help="Questions (half SciFact claims, half PubMedQA).")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    questions: list[str] = []
    for name in ("scifact", "pubmedqa"):
        path = find_local(name, "questions.jsonl", data_dir=Settings().data_dir)
        if path is None:
            sys.exit(f"{name}/questions.jsonl not found (set RAG_DATA_DIR)")
        rows = [json.loads(line)["question"] for line in path.read_text().split("\n") if line.strip()]
        questions += random.Random(0).sample(rows, min(args.n // 2, len(rows)))

    settings = Settings()
    retriever = Retriever(settings, collection=args.collection)
    stats = retriever.store.stats(args.collection)[0]
    retriever.search("warm-up", k=args.k)  # load the embedder and the BM25 index outside the timing
    print(
        f"collection {stats.name}: {stats.papers:,} papers, {stats.chunks:,} chunks; {len(questions)} questions, k={args.k}"
    )
    plain = Retriever(settings.with_retrieve(query_adapter=False), collection=args.collection)
    plain.search("warm-up", k=args.k)
    results = {}
    runs = [(s, retriever, s) for s in ("bm25", "dense", "hybrid")] + [("hybrid, no adapter", plain, "hybrid")]
    for label, r, system in runs:
        times = []
        for q in questions:
            t0 = time.perf_counter()
            r.search(q, k=args.k, system=system)  # type: ignore[arg-type]
            times.append((time.perf_counter() - t0) * 1000)
        results[label] = np.array(times)
        print(
            f"{label:18s} p50 {np.percentile(times, 50):6.1f} ms   p95 {np.percentile(times, 95):6.1f} ms   "
            f"mean {np.mean(times):6.1f} ms"
        )
    base = np.percentile(results["bm25"], 50) + np.percentile(results["dense"], 50)
    print(f"hybrid p50 / (bm25 p50 + dense p50) = {np.percentile(results['hybrid'], 50) / base:.2f}")


if __name__ == "__main__":
    main()
