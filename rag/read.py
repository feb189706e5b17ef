"""Read input files into :class:`~rag.types.Paper` objects.

Supported: PDF (text layer via pypdfium2, read as a paper by :mod:`rag.pdf`), JATS XML full text
(``.nxml``/``.xml`` from PMC or Europe PMC, by :mod:`rag.jats`), ``.txt``, ``.md``/``.markdown``, and corpus records in
``.jsonl``/``.json`` (``{"doc_id", "title", "abstract" | "text", "year"?, "authors"?, "doi"?, "meta"?}``).
Directories are walked recursively. Each bad input becomes a typed :class:`~rag.errors.InputError`
naming it; the rest is still read.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from rag.errors import (
    CorruptFileError,
    EmptyInputError,
    InputError,
    RecordError,
    TextEncodingError,
    UnsupportedFormatError,
)
from rag.jats import is_jats, read_jats
from rag.lang.citations import DOI
from rag.lang.normalize import dehyphenate, normalize
from rag.lang.roles import set_apart
from rag.pdf.reader import read_pdf
from rag.types import Paper, PaperSection

TEXT_SUFFIXES = {".txt", ".text"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
RECORD_SUFFIXES = {".jsonl", ".json", ".ndjson"}
PDF_SUFFIXES = {".pdf"}
JATS_SUFFIXES = {".nxml", ".xml"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | MARKDOWN_SUFFIXES | RECORD_SUFFIXES | PDF_SUFFIXES | JATS_SUFFIXES

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")

ReadResult = Paper | InputError
_AHEAD = 4  # PDFs queued per reading process: enough to keep it busy, few enough to bound memory


def collect_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[InputError]]:
    """Expand directories (recursively, skipping hidden entries) into supported files, in a stable order."""
    files: list[Path] = []
    errors: list[InputError] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                hidden = any(part.startswith(".") for part in rel.parts)
                if child.is_file() and not hidden and child.suffix.lower() in SUPPORTED_SUFFIXES:
                    files.append(child)
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_SUFFIXES:
                files.append(path)
            else:
                supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
                errors.append(
                    UnsupportedFormatError(
                        path, f"unsupported file type {path.suffix or '(none)'!r}; supported: {supported}"
                    )
                )
        else:
            errors.append(InputError(path, "no such file or directory"))
    return files, errors


def read_path(path: Path, encoding: str = "utf-8", ocr: bool = False) -> Iterator[ReadResult]:
    """Yield the papers in one file, or the errors that stop them being read.

    A record file yields one result per record, so one bad line does not lose the others. ``ocr``
    reads image-only PDFs with Tesseract (:mod:`rag.pdf`).
    """
    suffix = path.suffix.lower()
    try:
        if suffix in RECORD_SUFFIXES:
            yield from _read_records(path)
        elif suffix in PDF_SUFFIXES:
            yield read_pdf(path, file_doc_id(path), ocr=ocr)
        elif suffix in JATS_SUFFIXES:
            yield _read_jats(path)
        elif suffix in MARKDOWN_SUFFIXES:
            yield _read_markdown(path, encoding)
        elif suffix in TEXT_SUFFIXES:
            yield _read_text(path, encoding)
        else:
            yield UnsupportedFormatError(path, f"unsupported file type {suffix!r}")
    except InputError as exc:
        yield exc
    except OSError as exc:
        yield InputError(path, f"cannot read file: {exc.strerror or exc}")
    except Exception as exc:  # a damaged PDF can make pdfium fail in many ways: one file must not stop an ingest
        if suffix not in PDF_SUFFIXES:
            raise
        yield CorruptFileError(path, f"corrupt PDF: {type(exc).__name__}: {exc}")


def read_file(path: Path, encoding: str = "utf-8", ocr: bool = False) -> list[ReadResult]:
    """:func:`read_path` as a list (what a reading process sends back)."""
    return list(read_path(path, encoding, ocr))


def read_many(
    files: Sequence[Path], encoding: str = "utf-8", ocr: bool = False, workers: int = 1
) -> Iterator[tuple[Path, list[ReadResult]]]:
    """Each file with what it holds, in order. PDFs are read ahead in ``workers`` processes, so a
    consumer (the embedder) goes on while the next PDFs are read; other files are read here, as
    they come. At most ``_AHEAD`` PDFs per worker wait read, which bounds the memory held."""
    pdfs = [f for f in files if f.suffix.lower() in PDF_SUFFIXES]
    if workers < 1 or len(pdfs) < 2:  # a pool costs a process start: not worth it for one PDF
        for path in files:
            yield path, read_file(path, encoding, ocr)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the parent may hold ONNX Runtime and Chroma threads, which fork does not copy safely
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        queued = iter(pdfs)
        futures = {p: pool.submit(read_file, p, encoding, ocr) for p in islice(queued, workers * _AHEAD)}
        for path in files:
            if path not in futures:
                yield path, read_file(path, encoding, ocr)
                continue
            results = futures.pop(path).result()
            for nxt in islice(queued, 1):
                futures[nxt] = pool.submit(read_file, nxt, encoding, ocr)
            yield path, results


def _read_jats(path: Path) -> Paper:
    data = path.read_bytes()
    if not is_jats(data):
        raise UnsupportedFormatError(path, "XML that is not a JATS/NLM article (PMC .nxml, Europe PMC fullTextXML)")
    return read_jats(data, file_doc_id(path), source=str(path))


def file_doc_id(path: Path) -> str:
    """A stable id for a paper read from a file: its name plus a hash of its absolute path,
    so editing the file replaces the same paper while two files of one name stay distinct."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem)[:60].strip("-") or "file"
    return f"file:{stem}-{digest}"


def _decode(path: Path, data: bytes, encoding: str) -> str:
    if not data.strip():
        raise EmptyInputError(path, "file is empty")
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            encoding = codec
            break
    else:
        if b"\x00" in data[:8192]:
            raise CorruptFileError(path, "binary file (contains NUL bytes), not text")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise TextEncodingError(
            path,
            f"not valid {encoding} (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it to UTF-8 or set RAG_INGEST__ENCODING",
        ) from None
    except LookupError:
        raise TextEncodingError(path, f"unknown encoding {encoding!r}") from None
    if not text.strip():
        raise EmptyInputError(path, "file has no text")
    return text


def _clean(text: str) -> str:
    text = normalize(text.replace("\r\n", "\n").replace("\r", "\n"))
    text = re.sub(r"[ \t\f\v]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _find_doi(text: str) -> str | None:
    match = DOI.search(text)
    return match.group(1) if match else None


def _read_text(path: Path, encoding: str) -> Paper:
    text = dehyphenate(_clean(_decode(path, path.read_bytes(), encoding)))
    first = text.split("\n", 1)[0].strip()
    title = first if 0 < len(first) <= 200 and not first.endswith(".") else path.stem
    return Paper(
        doc_id=file_doc_id(path),
        title=title,
        sections=[PaperSection(text=text)],
        doi=_find_doi(text),
        source=str(path),
    )


def _read_markdown(path: Path, encoding: str) -> Paper:
    text = _decode(path, path.read_bytes(), encoding)
    title = ""
    sections: list[PaperSection] = []
    heading, lines = "", []  # type: ignore[var-annotated]

    def flush() -> None:
        body = _clean("\n".join(lines))
        if body:
            sections.append(PaperSection(title=heading, text=body, kind=set_apart(heading) or "body"))

    for line in text.splitlines():
        match = _MD_HEADING.match(line)
        if match:
            if not title and len(match.group(1)) == 1:
                title = match.group(2)
                continue
            flush()
            heading, lines = match.group(2), []
        else:
            lines.append(line)
    flush()
    if not sections:
        raise EmptyInputError(path, "markdown file has headings but no text")
    return Paper(
        doc_id=file_doc_id(path),
        title=title or path.stem,
        sections=sections,
        doi=_find_doi(text),
        source=str(path),
    )


def _read_records(path: Path) -> Iterator[ReadResult]:
    data = path.read_bytes()
    text = _decode(path, data, "utf-8")
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RecordError(f"{path}:{exc.lineno}", f"invalid JSON: {exc.msg}")
            return
        items = obj if isinstance(obj, list) else obj.get("papers", [obj]) if isinstance(obj, dict) else None
        if not isinstance(items, list):
            yield RecordError(path, 'expected a JSON object, a list of objects, or {"papers": [...]}')
            return
        for i, item in enumerate(items):
            yield _record_to_paper(item, f"{path}[{i}]")
        return
    for lineno, line in enumerate(text.split("\n"), start=1):  # not splitlines(): U+2028 may sit inside a record
        if not line.strip():
            continue
        source = f"{path}:{lineno}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RecordError(source, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        yield _record_to_paper(item, source)


def _record_to_paper(item: Any, source: str) -> ReadResult:
    if not isinstance(item, dict):
        return RecordError(source, f"expected a JSON object, got {type(item).__name__}")
    doc_id = item.get("doc_id") or item.get("id") or item.get("_id")
    if not isinstance(doc_id, (str, int)) or (isinstance(doc_id, str) and not doc_id.strip()):
        return RecordError(source, "record has no `doc_id`")
    doc_id = str(doc_id).strip()
    title = item.get("title") or ""
    body = item.get("abstract")
    if body is None:
        body = item.get("text")
    if not isinstance(title, str) or not isinstance(body, (str, type(None))):
        return RecordError(source, "`title`, `abstract` and `text` must be strings")
    if isinstance(body, float) and math.isnan(body):
        body = None
    raw_meta = item.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    sections = _record_sections(meta, body or "")
    if not sections:
        return EmptyInputError(source, f"record {doc_id!r} has no `abstract` or `text`")
    year = item.get("year", meta.get("year"))
    if isinstance(year, str) and year.strip().isdigit():
        year = int(year)
    if not isinstance(year, int) or isinstance(year, bool):
        year = None
    authors = item.get("authors", meta.get("authors")) or []
    if isinstance(authors, str):
        authors = [a.strip() for a in authors.split(";") if a.strip()]
    authors = [a.get("name", "") if isinstance(a, dict) else str(a) for a in authors if a]
    doi = item.get("doi") or meta.get("doi")
    return Paper(
        doc_id=doc_id,
        title=_clean(title),
        sections=sections,
        year=year,
        authors=[a for a in authors if a],
        doi=str(doi) if doi else None,
        source=source,
        meta={k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool)) and k not in {"year", "doi"}},
    )


def _record_sections(meta: dict[str, Any], body: str) -> list[PaperSection]:
    # Structured abstracts (e.g. PubMed) carry labelled parts: keep the labels as section titles.
    parts = meta.get("sections")
    if isinstance(parts, list) and parts and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts):
        sections = [
            PaperSection(title=_section_title(p.get("label") or p.get("title")), text=_clean(p["text"]))
            for p in parts
            if p["text"].strip()
        ]
        if sections:
            return sections
    body = _clean(body)
    return [PaperSection(text=body)] if body else []


def _section_title(label: object) -> str:
    label = str(label or "").strip()
    return "" if label.upper() in {"UNLABELLED", "UNLABELED", "NONE"} else label.capitalize()
