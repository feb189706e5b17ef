"""arXiv's query API: Atom feeds of e-prints, every one open access, read in full from its PDF.

arXiv asks for one request every three seconds; the :class:`~rag.find.base.Fetch` keeps to it.
"""

from __future__ import annotations

import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from rag.errors import SourceResponseError
from rag.find.base import Params, Record, Service, bare_arxiv, bare_doi, split_ids
from rag.find.text import ABSTRACT, clean, load_xml
from rag.types import Notice, Paper, PaperSection

NAME = "arxiv"
ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
PREPRINT = "Preprint"
ID_BATCH = 100  # ids per id_list request: keeps URLs short, well inside arXiv's max_results
PDF_URL = "https://arxiv.org/pdf/{}"
# A user who writes fields (ti:, au:, cat: …) or boolean operators wrote an arXiv query already.
_FIELDS = re.compile(r"\b(?:ti|au|abs|co|jr|cat|rn|id|all|submittedDate):", re.I)
_BOOLEAN = re.compile(r"\b(?:AND|OR|ANDNOT)\b")  # upper case, as arXiv requires
_TERMS = re.compile(r'"[^"]+"|[^\s"]+')
_PUNCT = ".,;:!?()[]{}'"
# How a withdrawn e-print is marked, in the author's words: "withdrawn" in its comment (a short note), or an
# abstract replaced by "This paper has been withdrawn …" (only its start: abstracts mention withdrawn drugs).
_WITHDRAWN_COMMENT = re.compile(r"\bwithdrawn\b", re.I)
_WITHDRAWN_ABSTRACT = re.compile(
    r"\s*(?:withdrawn\b|(?:this|the)\s+(?:paper|article|manuscript|submission|preprint|work|version)\s+"
    r"(?:has\s+been|is|was)\s+withdrawn\b|(?:the\s+)?authors?\s+(?:have|has)\s+withdrawn\b)",
    re.I,
)


def build_query(query: str) -> str:
    """A ``search_query``: plain words become ``all:word`` joined by AND (quoted phrases kept whole);
    one bare word is sent as it is (arXiv searches every field for it, as for ``all:``); a query
    already written with fields or AND/OR passes through."""
    if _FIELDS.search(query) or _BOOLEAN.search(query):
        return query.strip()
    terms = [t if t.startswith('"') else t.strip(_PUNCT) for t in _TERMS.findall(query)]
    terms = [t for t in terms if t.strip('"')]
    if len(terms) == 1 and not terms[0].startswith('"'):
        return terms[0]
    return " AND ".join(f"all:{t}" for t in terms)


def parse_feed(data: bytes) -> list[Record]:
    """The entries of an arXiv Atom feed; an error feed (HTTP 400) raises with arXiv's message."""
    root = load_xml(NAME, data)
    if root.tag != f"{ATOM}feed":
        raise SourceResponseError(NAME, f"expected an Atom feed, got <{root.tag}>")
    records = []
    for entry in root.iterfind(f"{ATOM}entry"):
        entry_id = entry.findtext(f"{ATOM}id") or ""
        if "/api/errors" in entry_id:
            raise SourceResponseError(NAME, clean(entry.findtext(f"{ATOM}summary")) or clean(entry_id))
        record = _entry(entry)
        if record is not None:
            records.append(record)
    return records


def _entry(entry: ET.Element) -> Record | None:
    arxiv_id = bare_arxiv(entry.findtext(f"{ATOM}id"))
    if not arxiv_id:
        return None
    summary = clean(entry.findtext(f"{ATOM}summary"))
    comment = clean(entry.findtext(f"{ARXIV}comment"))
    primary = entry.find(f"{ARXIV}primary_category")
    category = primary.get("term", "") if primary is not None else ""
    published = clean(entry.findtext(f"{ATOM}published"))
    withdrawn = bool(_WITHDRAWN_COMMENT.search(comment) or _WITHDRAWN_ABSTRACT.match(summary))
    return Record(
        source=NAME,
        key=f"{NAME}:{arxiv_id}",
        title=clean(entry.findtext(f"{ATOM}title")),
        abstract=[PaperSection(title=ABSTRACT, text=summary)] if summary else [],
        authors=[n for n in (clean(a.findtext(f"{ATOM}name")) for a in entry.iterfind(f"{ATOM}author")) if n],
        year=int(published[:4]) if published[:4].isdigit() else None,
        journal=clean(entry.findtext(f"{ARXIV}journal_ref")) or None,
        doi=bare_doi(entry.findtext(f"{ARXIV}doi")),
        arxiv_id=arxiv_id,
        pub_types=[PREPRINT, category] if category else [PREPRINT],
        retracted=withdrawn,
        notices=[Notice(kind="withdrawal", label="Withdrawn", source=NAME)] if withdrawn else [],
        open_access=True,
        pdf_url=_pdf_link(entry) or PDF_URL.format(arxiv_id),
    )


def _pdf_link(entry: ET.Element) -> str | None:
    for link in entry.iterfind(f"{ATOM}link"):
        if link.get("title") == "pdf" or link.get("type") == "application/pdf":
            return link.get("href")
    return None


class ArXiv(Service):
    """arXiv search, id lookup and full text (the PDF, read like any ingested PDF)."""

    name = NAME

    def search(self, query: str, limit: int, since: int | None = None) -> list[Record]:
        search_query = build_query(query)
        if limit < 1 or not search_query:
            return []
        if since:
            # arXiv dates are YYYYMMDDHHMM; the filter is repeated on the records, in case arXiv ignores it.
            search_query = f"({search_query}) AND submittedDate:[{since}01010000 TO 999912312359]"
        params: Params = {
            "search_query": search_query,
            "start": 0,
            "max_results": limit,
            "sortBy": "relevance",
            "sortOrder": "descending",
        }
        body = self.fetch.get(f"{self.base}/query", params)
        records = parse_feed(body) if body else []
        return [r for r in records if not since or r.year is None or r.year >= since][:limit]

    def lookup(self, ids: Sequence[str]) -> list[Record]:
        wanted = list(dict.fromkeys(a for a in (bare_arxiv(v) for v in split_ids(ids, "arxiv")) if a))
        records: list[Record] = []
        for start in range(0, len(wanted), ID_BATCH):
            batch = wanted[start : start + ID_BATCH]
            params: Params = {"id_list": ",".join(batch), "start": 0, "max_results": len(batch)}
            body = self.fetch.get(f"{self.base}/query", params)
            records += parse_feed(body) if body else []
        return records

    def full_text(self, record: Record) -> Paper | None:
        """The e-print's PDF read as a paper (None without an arXiv id, or when the PDF is missing)."""
        if not record.arxiv_id:
            return None
        url = record.pdf_url if record.source == NAME and record.pdf_url else PDF_URL.format(record.arxiv_id)
        body = self.fetch.get(url, missing_ok=True)
        if not body:
            return None
        return read_pdf_bytes(body, doc_id=f"{NAME}:{record.arxiv_id}", source=url)


def read_pdf_bytes(data: bytes, doc_id: str, source: str) -> Paper:
    """PDF bytes read by :func:`rag.pdf.reader.read_pdf` through a temporary file (deleted after), with
    ``source`` (the URL) in place of the temporary path."""
    from rag.pdf.reader import read_pdf  # the PDF stack loads only when a PDF is read

    with tempfile.NamedTemporaryFile(suffix=".pdf", delete=False) as f:
        f.write(data)
        path = Path(f.name)
    try:
        paper = read_pdf(path, doc_id)
    finally:
        path.unlink(missing_ok=True)
    report = paper.report.model_copy(update={"source": source}) if paper.report else None
    return paper.model_copy(update={"source": source, "report": report})
