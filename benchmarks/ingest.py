"""Ingest benchmark: papers/s, chunks/s, embedded tokens/s and peak memory for a corpus.

A baseline is measured in the same run: one plain pass of the bundled model as the issue
describes it (original session options, batch 16, truncation 256, texts in corpus order) over a
sample of the same papers, so the ratio below compares like with like on this machine.

    python benchmarks/ingest.py [--corpus ../shared/data/scifact/corpus.jsonl] [--preset fast]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.embed import bundled_model_files  # noqa: E402
from rag.indexing import Indexer, embedding_text  # noqa: E402
from rag.progress import ingest_bars  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.store import Store  # noqa: E402


def baseline_tokens_per_second(texts: list[str]) -> float:
    """The reference pass: default ONNX session, batch 16 in corpus order, padded to the batch's longest."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    model, tok_file = bundled_model_files()
    tok = Tokenizer.from_file(str(tok_file))
    tok.no_padding()
    tok.enable_truncation(256)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    encs = tok.encode_batch(texts)
    n_tokens = sum(len(e.ids) for e in encs)
    t0 = time.perf_counter()
    for start in range(0, len(encs), 16):
        batch = encs[start : start + 16]
        width = max(len(e.ids) for e in batch)
        ids = np.zeros((len(batch), width), np.int64)
        mask = np.zeros_like(ids)
        for i, e in enumerate(batch):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
    return n_tokens / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--baseline-sample", type=int, default=300, help="Papers in the baseline pass (0: skip).")
    parser.add_argument("--max-tokens", type=int, default=0, help="Override the chunk size.")
    parser.add_argument("--limit", type=int, default=0, help="Only the first N papers (0: all).")
    args = parser.parse_args()
    if not args.corpus.exists():
        sys.exit(f"corpus not found: {args.corpus} (pass --corpus)")

    corpus = args.corpus
    records = [json.loads(line) for line in corpus.open()]
    if args.limit:
        records = records[: args.limit]
    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    if args.limit:
        corpus = tmp / "corpus.jsonl"
        corpus.write_text("".join(json.dumps(r) + "\n" for r in records))

    overrides: dict = {"home": tmp / "home"}
    if args.max_tokens:
        overrides["chunk"] = {"max_tokens": args.max_tokens}
    settings = Settings.preset(args.preset, **overrides)
    store = Store(settings)
    t0 = time.perf_counter()
    with ingest_bars() as on_progress:
        report = Indexer(store).ingest([corpus], collection="bench", on_progress=on_progress)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    base = 0.0
    if args.baseline_sample:
        texts = [
            f"{r.get('title', '')}\n{r.get('abstract') or r.get('text') or ''}" for r in records[: args.baseline_sample]
        ]
        base = baseline_tokens_per_second(texts)
    wp_rate = 0.0
    if base:
        # Our rate in the baseline's unit (WordPiece tokens the model reads), for a fair ratio.
        embedder = store.embedder_for(store.collection("bench"))
        texts = [embedding_text(c) for c in store.iter_chunks("bench")]
        wp = embedder.count_tokens(texts) if hasattr(embedder, "count_tokens") else 0
        wp_rate = wp / seconds

    print(f"\ncorpus            {args.corpus} ({len(records):,} records), preset {args.preset!r}")
    print(
        f"papers            {report.papers_added:,} in {seconds:.1f} s  -> {report.papers_added / seconds:.1f} papers/s"
    )
    print(f"chunks            {report.chunks_added:,}  -> {report.chunks_added / seconds:.1f} chunks/s")
    print(
        f"embedded tokens   {report.tokens_embedded:,} (tiktoken) -> {report.tokens_embedded / seconds:,.0f} tokens/s end to end"
    )
    if base:
        print(f"WordPiece rate    {wp_rate:,.0f} model tokens/s end to end (ingest, incl. reading, chunking, writing)")
        print(
            f"baseline          {base:,.0f} model tokens/s (plain pass, batch 16, embedding only, {args.baseline_sample} papers)"
        )
        print(f"ratio             {wp_rate / base:.2f}x the baseline's embedding-only rate")
    print(f"peak memory       {peak_mb:,.0f} MiB (max RSS)")
    print(f"failed inputs     {len(report.failed)}")


if __name__ == "__main__":
    main()
