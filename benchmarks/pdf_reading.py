"""PDF reading benchmark: the project's PDF reader against hand-checked truth, with plain pypdf as the baseline.

Scores two readers in the same run on the developer PDF set (``shared/data/pdfs/dev``: 16 real PDFs and
``truth.json``, described in ``shared/data/pdfs/SOURCES.md``):

- ``rag``: whatever ``rag.read.read_path`` returns for a PDF;
- ``pypdf``: a plain pypdf reader (each page's ``extract_text()`` as a section ``page N``; title, authors and
  year from the PDF metadata, the first DOI in the text), chunked with the same ``chunk_paper``.

    python benchmarks/pdf_reading.py                  # everything, incl. ingest + QA (a few minutes)
    python benchmarks/pdf_reading.py --no-qa          # reading and chunk metrics only (fast)
    python benchmarks/pdf_reading.py --files 'grobid_*' --json out.json
    python benchmarks/pdf_reading.py --pdfs DIR       # a folder holding the PDFs and truth.json
    python benchmarks/pdf_reading.py --repeat 1       # one timing round instead of the best of 3

Targets for the rag reader: title exact >= 95%, authors found >= 90%, sections recalled >= 90%, running-header
and reference leakage 0 chunks, all answer facts in the top 5 hits >= 95% of questions, and reading at least as
fast (pages/s) as plain pypdf.

Comparisons normalise both sides (NFKC, casefold, punctuation to spaces, whitespace collapsed); containment
checks also try the text with line-end hyphens removed, and match whole words only. Answer facts holding a
digit ("81.1M", "73%") are compared as written (only case, white space, dashes and quotes normalised).
Each reader reads in a fresh process of its own (best time per file over --repeat rounds), so its speed
(reading only: no chunking, no QA) and peak memory (max RSS) are its own. A warning is printed when rag/
changed during the run (the reader is being rewritten in this tree).
Three allowances: a "References" heading counts as found when the reader split a reference list off the body,
a running header that is the paper's title is not counted in the first chunk that holds the title, and numeric
citation markers ("[52]") are ignored in the page-break sentence (a reader may drop them from the body).
QA is run for the rag reader only: there is no public API that ingests Paper objects, so the baseline's
papers cannot be searched.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import logging
import re
import resource
import sys
import tempfile
import time
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.chunk import chunk_paper  # noqa: E402
from rag.datasets import find_local  # noqa: E402
from rag.read import read_path  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.types import Chunk, Paper, PaperSection  # noqa: E402


def code_fingerprint() -> str:
    """A hash of the library's source: tells whether the reader changed while the benchmark ran."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "rag").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


CODE = code_fingerprint()  # the code this process imported (just above)

READERS = ("rag", "pypdf")
COLLECTION = "pdfbench"
# (key, label, target): a target ">= x" is a rate, "0" a count that must stay zero
METRICS: list[tuple[str, str, str]] = [
    ("title", "title exact", ">= 95%"),
    ("authors", "authors found", ">= 90%"),
    ("authors_all", "all authors right (files)", ""),
    ("year", "year exact", ""),
    ("doi", "DOI exact", ""),
    ("arxiv", "arXiv id exact", ""),
    ("invented", "year/DOI/arXiv set where none printed", "0"),
    ("sections", "sections recalled", ">= 90%"),
    ("header_leak", "chunks with a running header", "0"),
    ("ref_leak", "chunks with reference-list text", "0"),
    ("page_break", "page-break sentence intact", ""),
    ("hyphens", "hyphenated words intact", ""),
    ("qa_top5", "QA: all facts in the top 5 hits", ">= 95%"),
    ("qa_answer", "QA: all facts in the extractive answer", ""),
]
PER_FILE_COLUMNS = ["title", "authors", "sections", "header_leak", "ref_leak", "page_break", "hyphens", "qa_top5"]

_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+[^\s\"<>.,;])", re.IGNORECASE)
_PUNCT = re.compile(r"[^\w\s]|_")
_LINE_END_HYPHEN = re.compile(r"(\w)[-\u2010\u2011]\s*\n\s*(\w)")
_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2212"} | {"\u2018": "'", "\u2019": "'"})
_NUMBERING = re.compile(r"^\s*(?:\d+(?:\.\d+)*|[A-Z]|[IVXLC]+)\.?\s+(?=\S)")
_CITATION_MARK = re.compile(r"\s*\[\d+(?:\s*[,\u2013-]\s*\d+)*\]")
_REFERENCE_HEADINGS = {"references", "reference", "bibliography", "literature cited"}


# -- normalisation --------------------------------------------------------------------------------------------


def norm(text: str, join_hyphens: bool = False) -> str:
    """NFKC, casefold, punctuation to spaces, white space collapsed (optionally line-end hyphens removed)."""
    text = unicodedata.normalize("NFKC", text.replace("\u00ad", ""))
    if join_hyphens:
        text = _LINE_END_HYPHEN.sub(r"\1\2", text)
    return " ".join(_PUNCT.sub(" ", text.casefold()).split())


def as_written(text: str, join_hyphens: bool = False) -> str:
    """Like :func:`norm` but punctuation kept (dashes and quotes unified): numbers compare as printed."""
    text = unicodedata.normalize("NFKC", text.replace("\u00ad", ""))
    if join_hyphens:
        text = _LINE_END_HYPHEN.sub(r"\1\2", text)
    return " ".join(text.translate(_DASHES).casefold().split())


def drop_citation_marks(text: str) -> str:
    """Without numeric citation markers ("[52]", "[3, 7-9]"), which a reader may drop from the body."""
    return _CITATION_MARK.sub(" ", text)


def strip_numbering(heading: str) -> str:
    """ "1 Introduction", "2.", "A.", "IV." -> the heading without its number."""
    return _NUMBERING.sub("", heading, count=1)


class Haystack:
    """A text prepared for containment checks, with and without line-end hyphens joined."""

    def __init__(self, text: str) -> None:
        self.words = [f" {norm(text, j)} " for j in (True, False)]
        self.written = [as_written(text, j) for j in (True, False)]

    def has(self, needle: str) -> bool:
        """``needle`` occurs as whole words (normalised)."""
        key = norm(needle)
        return bool(key) and any(f" {key} " in h for h in self.words)

    def has_fact(self, fact: str) -> bool:
        """An answer fact: as written when it holds a digit, else like :meth:`has`."""
        if not any(c.isdigit() for c in fact):
            return self.has(fact)
        key = as_written(fact)
        head = r"(?<![0-9a-z])" if key[:1].isalnum() else ""
        tail = r"(?![0-9a-z])" if key[-1:].isalnum() else ""
        pattern = re.compile(head + re.escape(key) + tail)
        return any(pattern.search(h) for h in self.written)


# -- the readers ----------------------------------------------------------------------------------------------


def read_rag(path: Path) -> Paper | str:
    """The reader under test; an error becomes its message."""
    for result in read_path(path):
        return result if isinstance(result, Paper) else f"{type(result).__name__}: {result}"
    return "no result"


def read_pypdf(path: Path) -> Paper | str:
    """The baseline: plain pypdf, one section per page, metadata from the document info."""
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
        info = dict(reader.metadata or {})
    except Exception as exc:  # pypdf raises assorted errors on damaged files
        return f"{type(exc).__name__}: {exc}"
    text = "\n".join(pages)
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    created = re.match(r"D:(\d{4})", str(info.get("/CreationDate") or ""))
    doi = _DOI.search(text)
    return Paper(
        doc_id=f"pypdf:{path.name}",
        title=str(info.get("/Title") or "").strip() or first_line,
        sections=[PaperSection(title=f"page {i}", text=p) for i, p in enumerate(pages, 1) if p.strip()],
        year=int(created.group(1)) if created else None,
        authors=[a.strip() for a in re.split(r";|,| and ", str(info.get("/Author") or "")) if a.strip()],
        doi=doi.group(1) if doi else None,
        source=str(path),
    )


def timed_read(reader: str, files: list[str], repeat: int) -> dict[str, Any]:
    """Read every file ``repeat`` times with one reader (run in a fresh process): the first round's results,
    each file's best time, the memory before and after, and the library code the process imported."""
    read = read_rag if reader == "rag" else read_pypdf
    paths = [Path(f) for f in files]
    read(min(paths, key=lambda p: p.stat().st_size))  # warm-up: lazy imports, not counted
    start_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results: dict[str, Paper | str] = {}
    seconds: dict[str, float] = {}
    for _ in range(max(repeat, 1)):
        for path in paths:
            t0 = time.perf_counter()
            result = read(path)
            took = time.perf_counter() - t0
            results.setdefault(path.name, result)
            seconds[path.name] = min(took, seconds.get(path.name, took))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"results": results, "seconds": seconds, "start_kib": start_kib, "peak_kib": peak_kib, "code": CODE}


def run_reader(reader: str, files: list[Path], repeat: int) -> dict[str, Any]:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(timed_read, reader, [str(f) for f in files], repeat).result()


# -- scoring one paper ----------------------------------------------------------------------------------------


def score_metadata(paper: Paper, truth: dict[str, Any]) -> tuple[dict[str, list[int]], dict[str, Any]]:
    """Title, authors, year, DOI and arXiv id."""
    score: dict[str, list[int]] = {}
    if truth["title"]:
        score["title"] = [int(norm(paper.title or "") == norm(truth["title"])), 1]
    if truth["authors"]:
        got = {norm(a) for a in paper.authors or []}
        want = {norm(a) for a in truth["authors"]}
        score["authors"] = [len(want & got), len(want)]
        score["authors_all"] = [int(got == want), 1]
    values = {
        "year": paper.year,
        "doi": (paper.doi or "").strip().casefold() or None,
        "arxiv": re.sub(r"^arxiv:\s*", "", (getattr(paper, "arxiv_id", None) or "").strip().casefold()) or None,
    }
    wanted = {"year": truth["year"], "doi": (truth["doi"] or "").casefold() or None, "arxiv": truth["arxiv_id"]}
    wanted["arxiv"] = (wanted["arxiv"] or "").casefold() or None
    invented = [0, 0]
    for key, want in wanted.items():
        if want is None:
            invented[0] += values[key] is not None
            invented[1] += 1
        else:
            score[key] = [int(values[key] == want), 1]
    score["invented"] = invented
    details = {"title": paper.title, "authors": paper.authors, **values}
    return score, details


def score_sections(paper: Paper, truth: dict[str, Any]) -> tuple[list[int], list[str]]:
    """Truth headings found among the reader's section titles (numbering optional on either side)."""
    titles = [s.title for s in paper.sections if s.title]
    full = {norm(t) for t in titles}
    bare = {norm(strip_numbering(t)) for t in titles}
    split_references = bool(getattr(paper, "references", None))
    missing = []
    for heading in truth["sections"]:
        key = norm(strip_numbering(heading))
        found = norm(heading) in full or key in bare or (key in _REFERENCE_HEADINGS and split_references)
        if not found:
            missing.append(heading)
    return [len(truth["sections"]) - len(missing), len(truth["sections"])], missing


def leaking_chunks(chunks: list[Chunk], needles: list[str], title: str | None = None) -> list[int]:
    """Indexes of chunks holding any needle; a needle that is the title is allowed once (the title itself)."""
    title_key = norm(title or "")
    title_seen = False
    leaks = []
    for i, chunk in enumerate(chunks):
        hay = Haystack(chunk.text)
        hits = [n for n in needles if hay.has(n)]
        if hits and title_key and not title_seen and any(norm(n) == title_key for n in hits):
            title_seen = True
            hits = [n for n in hits if norm(n) != title_key]
        if hits:
            leaks.append(i)
    return leaks


def broken_or_missing(words: list[str], text: str) -> list[str]:
    """The hyphenated words that do not appear whole, or also appear split ("substan tially", "substan-tially")."""
    text = unicodedata.normalize("NFKC", text.replace("\u00ad", "")).casefold()
    bad = []
    for word in words:
        w = word.casefold()
        whole = re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text)
        splits = "|".join(rf"{re.escape(w[:i])}(?:[-\u2010\u2011]\s*|\s+){re.escape(w[i:])}" for i in range(1, len(w)))
        split = re.search(rf"(?<!\w)(?:{splits})(?!\w)", text)
        if not whole or split:
            bad.append(word)
    return bad


def body_chunks(paper: Paper, chunks: list[Chunk]) -> list[Chunk]:
    """Chunks of body text (not captions): the chunk's own kind if it has one, else its section's."""
    body_titles = {s.title for s in paper.sections if getattr(s, "kind", "body") == "body"}
    return [c for c in chunks if getattr(c, "kind", None) == "body" or c.section in body_titles]


def score_text(paper: Paper, chunks: list[Chunk], truth: dict[str, Any]) -> tuple[dict[str, list[int]], dict]:
    """Leakage, the page-break sentence and hyphenated words, all on the chunks."""
    score: dict[str, list[int]] = {}
    details: dict[str, Any] = {}
    if truth["running_header_lines"]:
        leaks = leaking_chunks(chunks, truth["running_header_lines"], truth["title"])
        score["header_leak"] = [len(leaks), len(chunks)]
        details["header_leak_examples"] = [chunks[i].text[:200] for i in leaks[:3]]
    if truth["reference_probe"]:
        leaks = leaking_chunks(chunks, truth["reference_probe"])
        score["ref_leak"] = [len(leaks), len(chunks)]
        details["ref_leak_examples"] = [chunks[i].text[:200] for i in leaks[:3]]
    if truth["page_break_sentence"]:
        body = Haystack(drop_citation_marks(" ".join(c.text for c in body_chunks(paper, chunks))))
        score["page_break"] = [int(body.has(drop_citation_marks(truth["page_break_sentence"]))), 1]
    if truth["hyphenated_words"]:
        bad = broken_or_missing(truth["hyphenated_words"], "\n".join(c.text for c in chunks))
        score["hyphens"] = [len(truth["hyphenated_words"]) - len(bad), len(truth["hyphenated_words"])]
        details["hyphens_bad"] = bad
    return score, details


def score_paper(result: Paper | str, truth: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Every reading metric of one file for one reader (a failed read scores 0 of what applies)."""
    if not isinstance(result, Paper):
        empty = Paper(doc_id="failed", sections=[])
        row = score_paper(empty, truth, settings)
        return {**row, "error": result, "chunks": 0}
    chunks = chunk_paper(result, settings.chunk)
    score, details = score_metadata(result, truth)
    score["sections"], details["sections_missing"] = score_sections(result, truth)
    text_score, text_details = score_text(result, chunks, truth)
    details["section_titles"] = [s.title for s in result.sections][:60]
    return {
        "score": score | text_score,
        "details": details | text_details,
        "chunks": len(chunks),
        "doc_id": result.doc_id,
        "error": None,
    }


# -- QA: ingest with the rag reader, then search and answer -------------------------------------------------


def run_qa(files: list[Path], truths: dict[str, dict], doc_ids: dict[str, str], settings: Settings) -> dict:
    """Per file: for each question, whether all facts are in the top-5 hits and in the extractive answer.

    Both run with the default settings, each question filtered to its paper."""
    from rag.indexing import Indexer
    from rag.pipeline import answer
    from rag.retrieve import Retriever
    from rag.store import Store
    from rag.types import Filters

    t0 = time.perf_counter()
    report = Indexer(Store(settings)).ingest(files, collection=COLLECTION)
    ingest_seconds = time.perf_counter() - t0
    retriever = Retriever(settings, collection=COLLECTION)  # asked of one paper, the search fills k with its chunks
    per_file: dict[str, list[dict[str, Any]]] = {}
    for name, truth in truths.items():
        items = per_file.setdefault(name, [])
        for qa in truth["qa"]:
            item: dict[str, Any] = {"question": qa["question"], "facts": qa["answer_facts"]}
            if name not in doc_ids:
                items.append(item | {"top5": False, "answer": False, "error": "not read"})
                continue
            filters = Filters(doc_ids=[doc_ids[name]])
            hits = retriever.search(qa["question"], k=5, filters=filters)
            in_hits = Haystack("\n\n".join(e.chunk.text for e in hits))
            reply = answer(
                qa["question"], collection=COLLECTION, settings=settings, filters=filters, drafter="extractive"
            )
            in_answer = Haystack(reply.markdown)
            item["top5_missing"] = [f for f in qa["answer_facts"] if not in_hits.has_fact(f)]
            item["answer_missing"] = [f for f in qa["answer_facts"] if not in_answer.has_fact(f)]
            item["top5"], item["answer"] = not item["top5_missing"], not item["answer_missing"]
            item["hits"] = len(hits)
            items.append(item)
    failed = [f.model_dump() for f in report.failed]
    cv = shape_cv(truths, doc_ids, settings)
    return {
        "files": per_file, "ingest_seconds": ingest_seconds, "chunks": report.chunks_added, "failed": failed,
        "shape_cv": cv,
    }  # fmt: skip


SHAPE_BONUSES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def shape_cv(truths: dict[str, dict], doc_ids: dict[str, str], settings: Settings) -> dict[str, Any]:
    """Leave-one-paper-out choice of ``retrieve.shape_bonus``: for each paper, the bonus that puts the most
    answer facts in the top 5 on the *other* papers (ties: the smallest), scored on the held-out one."""
    from rag.retrieve import Retriever
    from rag.types import Filters

    passes: dict[float, dict[str, int]] = {}
    for bonus in SHAPE_BONUSES:
        retriever = Retriever(settings.with_retrieve(shape_bonus=bonus), collection=COLLECTION)
        passes[bonus] = {}
        for name, truth in truths.items():
            if name not in doc_ids:
                continue
            for qa in truth["qa"]:
                hits = retriever.search(qa["question"], k=5, filters=Filters(doc_ids=[doc_ids[name]]))
                found = Haystack("\n\n".join(e.chunk.text for e in hits))
                passed = all(found.has_fact(f) for f in qa["answer_facts"])
                passes[bonus][name] = passes[bonus].get(name, 0) + passed
    chosen, held_out = {}, 0
    for name in passes[0.0]:
        rest = {b: sum(v for n, v in passes[b].items() if n != name) for b in SHAPE_BONUSES}
        chosen[name] = min(b for b in SHAPE_BONUSES if rest[b] == max(rest.values()))
        held_out += passes[chosen[name]][name]
    questions = sum(len(truths[n]["qa"]) for n in passes[0.0])
    totals_ = {str(b): sum(passes[b].values()) for b in SHAPE_BONUSES}
    return {"by_bonus": totals_, "chosen": chosen, "held_out": held_out, "questions": questions}


def add_qa(row: dict[str, Any], items: list[dict[str, Any]]) -> None:
    if items:
        row["score"]["qa_top5"] = [sum(i["top5"] for i in items), len(items)]
        row["score"]["qa_answer"] = [sum(i["answer"] for i in items), len(items)]
    row["qa"] = items


# -- report ---------------------------------------------------------------------------------------------------


def totals(rows: dict[str, dict[str, Any]]) -> dict[str, list[int]]:
    """Sum count / applicable of every metric over the files."""
    total: dict[str, list[int]] = {}
    for row in rows.values():
        for key, (count, applicable) in row["score"].items():
            acc = total.setdefault(key, [0, 0])
            acc[0] += count
            acc[1] += applicable
    return total


def met(target: str, count: int, applicable: int) -> str:
    if not target or not applicable:
        return ""
    if target == "0":
        return "yes" if count == 0 else "no"
    threshold = float(target.strip(">= %")) / 100
    return "yes" if count / applicable >= threshold else "no"


def cell(value: list[int] | None) -> tuple[str, str]:
    if not value or not value[1]:
        return "–", "–"
    count, applicable = value
    return f"{count}/{applicable}", f"{count / applicable:.1%}"


def total_table(total: dict[str, dict[str, list[int]]], qa_skipped: str) -> list[str]:
    lines = [
        "| metric | target | rag | rag rate | rag meets target | pypdf | pypdf rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label, target in METRICS:
        rag, base = total["rag"].get(key), total["pypdf"].get(key)
        if key.startswith("qa_") and rag is None:
            lines.append(f"| {label} | {target or '–'} | skipped ({qa_skipped}) | | | | |")
            continue
        rag_cells, base_cells = cell(rag), cell(base)
        if key.startswith("qa_"):
            base_cells = ("n/a: no ingest path for Paper objects", "")
        verdict = met(target, *(rag or [0, 0]))
        lines.append(f"| {label} | {target or '–'} | {' | '.join(rag_cells)} | {verdict} | {' | '.join(base_cells)} |")
    return lines


def speed_table(speed: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        "| reader | pages | seconds | pages/s | peak RSS MiB | RSS after warm-up MiB |",
        "|---|---|---|---|---|---|",
    ]
    for reader in READERS:
        s = speed[reader]
        lines.append(
            f"| {reader} | {s['pages']} | {s['seconds']:.2f} | {s['pages_per_second']:.1f} | "
            f"{s['peak_mib']:.0f} | {s['start_mib']:.0f} |"
        )
    ratio = speed["rag"]["pages_per_second"] / max(speed["pypdf"]["pages_per_second"], 1e-9)
    mem = speed["rag"]["peak_mib"] / max(speed["pypdf"]["peak_mib"], 1e-9)
    verdict = "meets" if ratio >= 1 else "misses"
    lines.append(f"\nspeed rag/pypdf: {ratio:.2f}x ({verdict} the target >= 1.00x); peak memory rag/pypdf: {mem:.2f}x")
    return lines


def per_file_table(rows: dict[str, dict[str, dict[str, Any]]], pages: dict[str, int]) -> list[str]:
    labels = {key: label for key, label, _ in METRICS}
    header = ["file", "pages", *(labels[k] for k in PER_FILE_COLUMNS), "meta (year, DOI, arXiv)", "read s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in rows["rag"]:
        cells = [name, str(pages[name])]
        for key in [*PER_FILE_COLUMNS, "meta"]:
            pair = []
            for reader in READERS:
                row = rows[reader][name]
                if row["error"]:
                    pair.append("error")
                    continue
                score = row["score"]
                value = [sum(score.get(k, [0, 0])[i] for k in ("year", "doi", "arxiv")) for i in (0, 1)]
                pair.append(cell(value if key == "meta" else score.get(key))[0])
            cells.append(" / ".join(pair))
        cells.append(" / ".join(f"{rows[r][name]['seconds']:.2f}" for r in READERS))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# -- main -----------------------------------------------------------------------------------------------------


def find_pdf_dir(given: Path | None) -> Path:
    """``--pdfs``, else ``pdfs/dev`` under the data folders other benchmarks use; exits when absent."""
    if given is not None:
        if not (given / "truth.json").is_file():
            sys.exit(f"no truth.json in {given} (--pdfs must name the folder holding the PDFs and truth.json)")
        return given
    truth = find_local("pdfs", "dev/truth.json", data_dir=Settings().data_dir)
    if truth is None:
        sys.exit(
            "pdfs/dev/truth.json not found in shared/data beside or above the checkout (set RAG_DATA_DIR or pass --pdfs)"
        )
    return truth.parent


def page_counts(files: list[Path]) -> dict[str, int]:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    counts = {}
    for path in files:
        try:
            counts[path.name] = len(PdfReader(path).pages)
        except Exception:
            counts[path.name] = 0
    return counts


def read_all(files: list[Path], pages: dict[str, int], repeat: int) -> tuple[dict[str, dict], dict[str, dict]]:
    """Both readers, each in a fresh process of its own: per-file results, speed and memory."""
    for path in files:
        path.read_bytes()  # the page cache holds every file before either reader is timed
    raw, speed = {}, {}
    for reader in ("pypdf", "rag"):
        raw[reader] = run_reader(reader, files, repeat)
        seconds = sum(raw[reader]["seconds"].values())
        speed[reader] = {
            "pages": sum(pages.values()),
            "seconds": seconds,
            "pages_per_second": sum(pages.values()) / max(seconds, 1e-9),
            "peak_mib": raw[reader]["peak_kib"] / 1024,
            "start_mib": raw[reader]["start_kib"] / 1024,
            "rounds": max(repeat, 1),
        }
    return raw, speed


def select(folder: Path, pattern: str) -> tuple[list[Path], dict[str, dict[str, Any]]]:
    """The PDFs whose name matches ``pattern``, and their truth records."""
    records = json.loads((folder / "truth.json").read_text())
    truths = {t["file"]: t for t in records if fnmatch.fnmatch(t["file"], pattern) and (folder / t["file"]).is_file()}
    if not truths:
        sys.exit(f"no PDF in {folder} matches {pattern!r}")
    return [folder / name for name in truths], truths


def score_all(raw: dict, files: list[Path], truths: dict, qa: bool) -> tuple[dict, dict | None]:
    """Per reader and file, every score; the QA of the rag reader in a temporary store unless ``qa`` is false."""
    with tempfile.TemporaryDirectory(prefix="rag-pdfbench-", ignore_cleanup_errors=True) as home:
        settings = Settings(home=Path(home))
        rows: dict[str, dict[str, dict[str, Any]]] = {reader: {} for reader in READERS}
        for reader in READERS:
            for f in files:
                row = score_paper(raw[reader]["results"][f.name], truths[f.name], settings)
                rows[reader][f.name] = row | {"seconds": raw[reader]["seconds"][f.name]}
        if not qa:
            return rows, None
        doc_ids = {name: row["doc_id"] for name, row in rows["rag"].items() if not row["error"]}
        qa_result = run_qa(files, truths, doc_ids, settings)
        for name, items in qa_result["files"].items():
            add_qa(rows["rag"][name], items)
    return rows, qa_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pdfs", type=Path, help="Folder holding the PDFs and truth.json (default: shared/data/pdfs/dev)."
    )
    parser.add_argument("--files", default="*", help="Only files whose name matches this glob, e.g. 'grobid_*'.")
    parser.add_argument("--no-qa", action="store_true", help="Skip the ingest and QA part (fast).")
    parser.add_argument("--repeat", type=int, default=3, help="Reading rounds; each file's best time counts.")
    parser.add_argument("--json", type=Path, help="Write every score and detail to this file.")
    args = parser.parse_args()
    started = time.perf_counter()
    folder = find_pdf_dir(args.pdfs)
    files, truths = select(folder, args.files)
    pages = page_counts(files)
    raw, speed = read_all(files, pages, args.repeat)
    rows, qa = score_all(raw, files, truths, qa=not args.no_qa)
    report(folder, rows, speed, pages, qa, "--no-qa" if args.no_qa else "")
    code = {"start": CODE, "rag_reader": raw["rag"]["code"], "end": code_fingerprint()}
    if len(set(code.values())) > 1:
        print(
            "\nWARNING: rag/ changed during the run (source hash at the start, in the reader's process, at the end: "
            f"{', '.join(code.values())}): the numbers may mix two versions of the reader; rerun."
        )
    seconds = time.perf_counter() - started
    print(f"\nrun time {seconds:.1f} s" + (f" (ingest {qa['ingest_seconds']:.1f} s)" if qa else ""))
    if args.json:
        totals_ = {r: totals(rows[r]) for r in READERS}
        out = {"pdfs": str(folder), "code": code, "totals": totals_, "speed": speed, "files": rows, "qa": qa}
        args.json.write_text(json.dumps(out | {"seconds": seconds}, indent=1, ensure_ascii=False, default=str))
        print(f"wrote {args.json}")


def report(folder: Path, rows: dict, speed: dict, pages: dict[str, int], qa: dict | None, qa_skipped: str) -> None:
    """Print the total, speed and per-file tables."""
    total = {r: totals(rows[r]) for r in READERS}
    failed = {r: [n for n, row in rows[r].items() if row["error"]] for r in READERS}
    print(f"## PDF reading: {len(rows['rag'])} files, {sum(pages.values())} pages ({folder})\n")
    print("\n".join(total_table(total, qa_skipped)))
    print("\nLeakage rows count chunks (of all chunks of the files with such truth); target 0.")
    print(
        "QA is scored for the rag reader only (there is no public API that ingests Paper objects): the top 5 hits "
        "of the paper and the extractive answer, with the default settings."
    )
    if qa:
        cv = qa["shape_cv"]
        by = ", ".join(f"{b}: {n}" for b, n in cv["by_bonus"].items())
        print(
            f"retrieve.shape_bonus, leave-one-paper-out: {cv['held_out']}/{cv['questions']} questions with all facts "
            f"in the top 5 on the held-out papers (chosen: {sorted(set(cv['chosen'].values()))}); "
            f"on all papers by bonus: {by}."
        )
    if qa and qa["failed"]:
        print(f"ingest failures: {qa['failed']}")
    for reader in READERS:
        if failed[reader]:
            print(f"{reader} could not read: " + "; ".join(f"{n} ({rows[reader][n]['error']})" for n in failed[reader]))
    print(
        f"\n## Speed (reading only; each reader in fresh processes, best of {speed['rag']['rounds']} rounds per file)\n"
    )
    print("\n".join(speed_table(speed)))
    print("\n## Per file (rag / pypdf)\n")
    print("\n".join(per_file_table(rows, pages)))


if __name__ == "__main__":
    main()
