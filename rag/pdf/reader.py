"""A PDF read as a careful human reads it: a :class:`~rag.types.Paper` with sections, pages,
references apart, metadata from page 1, and a :class:`~rag.types.ReadingReport`.

Steps: pdfium's text lines with their layout (:mod:`.layout`) → page furniture, footnotes,
captions and figure debris set apart (:mod:`.clean`) → title and authors from page 1
(:mod:`.meta`) → sections, paragraphs and page offsets, the reference list split off
(:mod:`.structure`, :mod:`.references`). An image-only PDF is read by OCR when asked for and
Tesseract is there (:mod:`.ocr`), and is a clear error otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from rag.embed import bundled_model_files
from rag.errors import EmptyInputError
from rag.lang.citations import DOI
from rag.lang.normalize import words_of
from rag.pdf.clean import CAPTION, Cleaned, body_size, clean_pages, extend_group, tabular
from rag.pdf.layout import Line, document_lines, open_pdf
from rag.pdf.meta import read_metadata
from rag.pdf.references import parse_references
from rag.pdf.structure import build
from rag.types import Paper, PaperSection, ReadingReport

READER_VERSION = "pdfium-3"
"""Changes whenever the reader would read the same file differently (a re-ingest then re-reads it)."""
_MIN_CHARS_PER_PAGE = 40  # fewer: the pages are images, not text
_GARBAGE_BELOW = 0.5  # known-word share under which a text layer is suspected garbage (real papers here: 0.68-0.94)


@lru_cache(maxsize=1)
def _known_words() -> frozenset[str]:
    """English words of three letters or more: the whole-word entries of the bundled WordPiece vocabulary."""
    vocab = json.loads(bundled_model_files()[1].read_text())["model"]["vocab"]
    return frozenset(w for w in vocab if w.isalpha() and len(w) >= 3)


def word_ratio(text: str) -> float | None:
    """Share of the words (three letters or more) that are known English words; None for no words.
    Bad OCR ("tlie rcsnlts sliow") scores near 0, real papers well above a half (technical terms are unknown)."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]{3,}", text)]
    known = _known_words()
    return sum(w in known for w in words) / len(words) if words else None


_MIN_FIGURE_WORDS = 15  # figure text shorter than this, with no table rows, is axis labels and legends


def _tables(cleaned: Cleaned, title: str) -> list[PaperSection]:
    """Table and figure text, one section per page block, rows on their own lines (long tables cut at rows);
    a running title (the paper's title repeated on a later page) and scraps of figure labels are dropped."""
    out = []
    for group in cleaned.tables:
        lines = [ln for ln in group if not (title and _same(ln.text, title))]
        text = "\n".join(ln.text for ln in lines)
        if lines and (any(tabular(ln.text) for ln in lines) or len(text.split()) >= _MIN_FIGURE_WORDS):
            out.append(PaperSection(title="Table", text=text, kind="table", pages=[(0, lines[0].page)]))
    return out


def _same(a: str, b: str) -> bool:
    return re.sub(r"\W+", "", a).casefold() == re.sub(r"\W+", "", b).casefold()


def _captions(cleaned: Cleaned) -> list[PaperSection]:
    out = []
    for group in cleaned.captions:
        text = " ".join(ln.text for ln in group)
        label = CAPTION.match(text)
        out.append(
            PaperSection(
                title=label.group(1) if label else "Caption", text=text, kind="caption", pages=[(0, group[0].page)]
            )
        )
    return out


def _read_layout(path: Path, warnings: list[str]) -> tuple[list[list[Line]], dict[str, Any]]:
    doc = open_pdf(path)
    try:
        pages = list(document_lines(doc, warnings))
        try:
            info = {k: v for k, v in doc.get_metadata_dict().items() if v}
        except (ValueError, UnicodeDecodeError):  # a damaged Info dictionary is no reason to lose the paper
            info = {}
    finally:
        doc.close()
    return pages, info


def read_pdf(path: Path, doc_id: str, ocr: bool = False) -> Paper:
    """Read one PDF into a paper; typed errors name the file (:mod:`rag.errors`)."""
    warnings: list[str] = []
    pages, info = _read_layout(path, warnings)
    page_chars = [sum(len(ln.text) for ln in lines) for lines in pages]
    if sum(page_chars) < _MIN_CHARS_PER_PAGE * len(pages):
        if not ocr:
            raise EmptyInputError(path, "PDF has no text layer (scanned image?); ingest with --ocr (needs Tesseract)")
        return _read_scanned(path, doc_id, len(pages))
    size = body_size(pages)
    cleaned = clean_pages(pages, size)
    page1 = [ln for ln in cleaned.body if ln.page == 1]
    first_furniture = [ln for ln in cleaned.furniture if ln.page == 1]
    meta = read_metadata(page1, first_furniture, size)
    body = [ln for ln in cleaned.body if id(ln) not in meta.front]
    vocabulary = words_of("\n".join(ln.text for ln in body))
    structure = build(body, size, vocabulary)
    for line in structure.set_apart:
        extend_group(cleaned.tables, line)
    sections = structure.sections + _captions(cleaned) + _tables(cleaned, meta.title)
    text = "\n\n".join(s.text for s in structure.sections)
    if not meta.doi:
        doi = DOI.search(text)  # printed in the body, never in the references
        meta.doi = doi.group(1) if doi else None
    references = parse_references(structure.reference_lines, vocabulary)
    report = _report(path, len(pages), text, structure.headings, len(references), len(cleaned.furniture))
    report.warnings[:0] = warnings
    sections += _textless_pages(path, page_chars, ocr, report)
    if not meta.title:
        report.warnings.append("no title found on page 1; the file name stands in")
    if not sections:
        raise EmptyInputError(path, "PDF has no body text after page furniture was removed")
    return Paper(
        doc_id=doc_id,
        title=meta.title or str(info.get("Title") or path.stem),
        sections=sections,
        year=meta.year,
        authors=meta.authors or [a.strip() for a in re.split(r";|,| and ", str(info.get("Author") or "")) if a.strip()],
        doi=meta.doi,
        arxiv_id=meta.arxiv_id,
        references=references,
        report=report,
        source=str(path),
        meta={"reader": READER_VERSION},
    )


def _ocr_texts(path: Path, pages: Iterable[int]) -> Iterator[tuple[int, str]]:
    """Pages read by Tesseract, normalised and dehyphenated like any text; pages with no text left out."""
    from rag.lang.normalize import dehyphenate, normalize
    from rag.pdf.ocr import ocr_pages

    for index, page_text in ocr_pages(path, pages):
        text = dehyphenate(normalize(page_text)).strip()
        if text:
            yield index, text


def _textless_pages(path: Path, page_chars: list[int], ocr: bool, report: ReadingReport) -> list[PaperSection]:
    """Pages with (almost) no text layer in a document that has one — scanned pages inside, or full-page
    figures: said in the report, and read by OCR when asked for."""
    empty = [i for i, n in enumerate(page_chars) if n < _MIN_CHARS_PER_PAGE]
    if not empty:
        return []
    listed = ", ".join(str(i + 1) for i in empty[:20]) + (" …" if len(empty) > 20 else "")
    if not ocr:
        report.warnings.append(f"page(s) {listed} have no text layer (scans or full-page figures): not read; see --ocr")
        return []
    out = [
        PaperSection(title=f"Page {index + 1} (OCR)", text=text, pages=[(0, index + 1)])
        for index, text in _ocr_texts(path, empty)
    ]
    report.ocr_used = bool(out)
    report.warnings.append(f"page(s) {listed} had no text layer and were read by OCR")
    return out


def _report(path: Path, pages: int, text: str, headings: list[str], n_refs: int, removed: int) -> ReadingReport:
    ratio = word_ratio(text)
    report = ReadingReport(
        source=str(path),
        pages=pages,
        chars=len(text),
        word_ratio=round(ratio, 3) if ratio is not None else None,
        sections=headings,
        references=n_refs,
        removed_lines=removed,
    )
    if ratio is not None and ratio < _GARBAGE_BELOW:
        report.ocr_suspected = True
        report.warnings.append(
            f"only {ratio:.0%} of the words are known words: the text layer may be bad OCR; re-run OCR on the scan"
        )
    if not headings:
        report.warnings.append("no section headings recognised")
    if pages > 2 and not n_refs:
        report.warnings.append("no reference list found")
    return report


def _read_scanned(path: Path, doc_id: str, n_pages: int) -> Paper:
    """An image-only PDF through Tesseract, page by page: one section, its page offsets kept."""
    text, pages = "", []
    for index, cleaned in _ocr_texts(path, range(n_pages)):
        pages.append((len(text) + (2 if text else 0), index + 1))
        text = f"{text}\n\n{cleaned}" if text else cleaned
    if not text:
        raise EmptyInputError(path, "OCR found no text on any page")
    report = _report(path, n_pages, text, [], 0, 0)
    report.ocr_used = True
    report.warnings.append("text from OCR (Tesseract): no layout, so no sections, references or page-1 metadata")
    first = text.split("\n", 1)[0].strip()
    return Paper(
        doc_id=doc_id,
        title=first if 0 < len(first) <= 200 else path.stem,
        sections=[PaperSection(text=text, pages=pages)],
        report=report,
        source=str(path),
        meta={"reader": READER_VERSION + "+ocr"},
    )
