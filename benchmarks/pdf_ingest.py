"""PDF ingest with reading processes beside the embedder vs reading inline, measured in one run.

Ingests the same PDFs (default: ``../shared/data/pdfs/dev``, repeated ``--copies`` times as distinct
files so there is enough to overlap) into fresh stores, once with ``RAG_INGEST__READ_WORKERS=0``
(read in the ingesting process, then embedded: the baseline) and once with one reading process (PDFs read in
processes while the embedder runs), and prints wall time, PDFs/s and the ratio.

    python benchmarks/pdf_ingest.py [--pdfs DIR] [--copies 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.indexing import Indexer  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.store import Store  # noqa: E402


def _run(folder: Path, workers: int, home: Path) -> tuple[float, int, int]:
    settings = Settings(home=home, ingest={"read_workers": workers})
    started = time.perf_counter()
    report = Indexer(Store(settings)).ingest([folder], collection="bench")
    return time.perf_counter() - started, report.papers_added, report.chunks_added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdfs", type=Path, default=ROOT.parent / "shared" / "data" / "pdfs" / "dev")
    parser.add_argument("--copies", type=int, default=3, help="Copies of each PDF (distinct paths, same bytes).")
    args = parser.parse_args()
    pdfs = sorted(args.pdfs.glob("*.pdf"))
    if not pdfs:
        sys.exit(f"no PDFs in {args.pdfs}")
    with tempfile.TemporaryDirectory(prefix="rag-pdf-bench-") as tmp:
        folder = Path(tmp) / "pdfs"
        for copy in range(args.copies):
            (folder / str(copy)).mkdir(parents=True)
            for pdf in pdfs:
                shutil.copy(pdf, folder / str(copy) / pdf.name)
        n = len(pdfs) * args.copies
        _run(folder, 0, Path(tmp) / "warm")  # warm the model cache and the page cache, not measured
        rows = [
            (label, *_run(folder, w, Path(tmp) / label))
            for label, w in (("inline (baseline)", 0), ("one reading process", 1))
        ]
    print(
        f"{n} PDFs ({len(pdfs)} distinct × {args.copies}); the default here: {Settings().ingest.workers()} reading process(es)\n"
    )
    print("| reading | seconds | PDFs/s | papers | chunks |\n| --- | --- | --- | --- | --- |")
    for label, secs, papers, chunks in rows:
        print(f"| {label} | {secs:.1f} | {n / secs:.2f} | {papers} | {chunks} |")
    print(f"\nspeed-up: {rows[0][1] / rows[1][1]:.2f}×")


if __name__ == "__main__":
    main()
