"""Europe PMC's REST search: MEDLINE, PMC and preprint records in one index, with open-access full text.

Search asks for ``resultType=core`` (abstracts, authors, publication types, full-text links) as JSON and
follows ``nextCursorMark``. Open-access PMC articles are read from ``/{PMCID}/fullTextXML`` (JATS).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.errors import SourceResponseError
from rag.find.base import Params, Record, Service, bare_doi, split_ids
from rag.find.text import as_int, clean, flip_name, load_json, markup_sections, plain_text, preview
from rag.types import Notice, NoticeKind, Paper

NAME = "europepmc"
PAGE_MAX = 1000  # Europe PMC's largest pageSize
LOOKUP_CLAUSES = 50  # identifiers OR-ed into one query: keeps the URL far below common 8 KB limits
LAST_YEAR = 3000  # open upper end of a FIRST_PDATE range

# ---------------------------------------------------------------------------------------------- records

# commentCorrection types that report a notice about this record ("… for" ones are the notice's own side).
_COMMENT_NOTICES: dict[str, NoticeKind] = {
    "retraction in": "retraction",
    "expression of concern in": "expression_of_concern",
    "erratum in": "correction",
}
_RETRACTED_TYPES = {"retracted publication"}


def parse_search(data: bytes) -> list[Record]:
    """The records of one page of a Europe PMC search (``core`` or ``lite`` JSON)."""
    return parse_page(data)[0]


def parse_page(data: bytes) -> tuple[list[Record], str | None]:
    """One page's records and the cursor of the next page (None at the end)."""
    obj = load_json(NAME, data)
    if not isinstance(obj, dict) or not isinstance(obj.get("resultList"), dict):
        raise SourceResponseError(NAME, f"no resultList in the response: {preview(data)}")
    results = obj["resultList"].get("result") or []
    if not isinstance(results, list):
        raise SourceResponseError(NAME, "resultList.result is not a list")
    records = [r for r in (parse_result(x) for x in results if isinstance(x, dict)) if r is not None]
    cursor = obj.get("nextCursorMark")
    return records, cursor if isinstance(cursor, str) and cursor else None


def parse_result(r: dict[str, Any]) -> Record | None:
    """One search result as a record (None without an id)."""
    rid, src = clean(str(r.get("id") or "")), clean(str(r.get("source") or ""))
    if not rid:
        return None
    pub_types = _pub_types(r)
    notices = _notices(r, pub_types)
    pmcid = clean(r.get("pmcid")) or (rid if src == "PMC" else "")
    return Record(
        source=NAME,
        key=f"{NAME}:{src}:{rid}" if src else f"{NAME}:{rid}",
        title=plain_text(r.get("title")),
        abstract=markup_sections(r.get("abstractText")),
        authors=_authors(r),
        year=as_int(r.get("pubYear")),
        journal=_journal(r),
        doi=bare_doi(r.get("doi")),
        pmid=clean(r.get("pmid")) or (rid if src == "MED" else None),
        pmcid=pmcid.upper() if pmcid else None,
        pub_types=pub_types,
        mesh=_mesh(r),
        cited_by=as_int(r.get("citedByCount")),
        retracted=any(n.retracts for n in notices),
        notices=notices,
        open_access={"Y": True, "N": False}.get(str(r.get("isOpenAccess"))),
        pdf_url=_pdf_url(r),
    )


def _pub_types(r: dict[str, Any]) -> list[str]:
    value = r.get("pubTypeList", {}).get("pubType") if isinstance(r.get("pubTypeList"), dict) else r.get("pubType")
    if isinstance(value, str):  # `lite` results: "published erratum; correction"
        value = value.split(";")
    return [t for t in (clean(str(v)) for v in value or []) if t]


def _notices(r: dict[str, Any], pub_types: list[str]) -> list[Notice]:
    notices = []
    for c in _list(r, "commentCorrectionList", "commentCorrection"):
        kind = _COMMENT_NOTICES.get(clean(str(c.get("type") or "")).lower())
        if kind:
            ref = f"PMID {c['id']}" if c.get("source") == "MED" and c.get("id") else clean(c.get("reference"))
            notices.append(Notice(kind=kind, label=f"{clean(c.get('type'))} {ref}".strip(), source=NAME))
    if any(t.lower() in _RETRACTED_TYPES for t in pub_types) and not any(n.kind == "retraction" for n in notices):
        notices.append(Notice(kind="retraction", label="Retracted Publication", source=NAME))
    return notices


def _list(r: dict[str, Any], outer: str, inner: str) -> list[dict[str, Any]]:
    """``r[outer][inner]`` as a list of objects (Europe PMC wraps every list in an object)."""
    box = r.get(outer)
    items = box.get(inner) if isinstance(box, dict) else None
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def _authors(r: dict[str, Any]) -> list[str]:
    names = []
    for a in _list(r, "authorList", "author"):
        first, last = clean(a.get("firstName")), clean(a.get("lastName"))
        name = f"{first} {last}".strip() if last else clean(a.get("collectiveName")) or flip_name(a.get("fullName", ""))
        if name:
            names.append(name)
    if not names and r.get("authorString"):  # `lite` results: "Schoenfeld JD, Haas-Kogan DA, O'Neill AF."
        names = [flip_name(n) for n in str(r["authorString"]).split(",") if n.strip().rstrip(".")]
    return names


def _journal(r: dict[str, Any]) -> str | None:
    info = r.get("journalInfo")
    journal = info.get("journal") if isinstance(info, dict) else None
    title = journal.get("title") if isinstance(journal, dict) else r.get("journalTitle")
    if not title and isinstance(r.get("bookOrReportDetails"), dict):  # preprints: the server, e.g. bioRxiv
        title = r["bookOrReportDetails"].get("publisher")
    return clean(title) or None


def _mesh(r: dict[str, Any]) -> list[str]:
    return [n for n in (clean(m.get("descriptorName")) for m in _list(r, "meshHeadingList", "meshHeading")) if n]


def _pdf_url(r: dict[str, Any]) -> str | None:
    """A PDF link that is open access (`OA`), else one that is free to read (`F`)."""
    links = [u for u in _list(r, "fullTextUrlList", "fullTextUrl") if u.get("documentStyle") == "pdf" and u.get("url")]
    for code in ("OA", "F"):
        for link in links:
            if link.get("availabilityCode") == code:
                return str(link["url"])
    return None


# ---------------------------------------------------------------------------------------------- connector


class EuropePMC(Service):
    """Europe PMC search, identifier lookup and open-access full text (JATS)."""

    name = NAME

    def search(self, query: str, limit: int, since: int | None = None) -> list[Record]:
        if limit < 1 or not query.strip():
            return []
        if since:
            query = f"({query}) AND FIRST_PDATE:[{since}-01-01 TO {LAST_YEAR}-12-31]"
        return self._query(query, limit)

    def lookup(self, ids: Sequence[str]) -> list[Record]:
        clauses = [f"PMCID:{_pmcid(p)}" for p in split_ids(ids, "pmcid")]
        clauses += [f"(EXT_ID:{p} AND SRC:MED)" for p in split_ids(ids, "pmid") if p.isdigit()]
        clauses += [f'DOI:"{d}"' for d in (bare_doi(v) for v in split_ids(ids, "doi")) if d and '"' not in d]
        records: dict[str, Record] = {}
        for start in range(0, len(clauses), LOOKUP_CLAUSES):
            chunk = clauses[start : start + LOOKUP_CLAUSES]
            # Twice as many results as identifiers: a DOI can match a preprint and its published version.
            for record in self._query(" OR ".join(chunk), 2 * len(chunk)):
                records.setdefault(record.key, record)
        return list(records.values())

    def full_text(self, record: Record) -> Paper | None:
        """The JATS full text of an open-access PMC article; None without a PMCID, when the record is known
        not to be open access, or when Europe PMC has no full text (404). Unknown access is tried."""
        if not record.pmcid or record.open_access is False:
            return None
        url = f"{self.base}/{_pmcid(record.pmcid)}/fullTextXML"
        body = self.fetch.get(url, missing_ok=True)
        if not body:
            return None
        from rag.jats import read_jats  # its own module, loaded only when a full text is read

        paper: Paper = read_jats(body, doc_id=record.key, source=url)
        return paper

    def _query(self, query: str, limit: int) -> list[Record]:
        """Up to ``limit`` records of a query, page after page along ``nextCursorMark``."""
        records: list[Record] = []
        cursor = "*"
        while len(records) < limit:
            params: Params = {
                "query": query,
                "resultType": "core",
                "format": "json",
                "pageSize": min(limit, PAGE_MAX),
                "cursorMark": cursor,
            }
            body = self.fetch.get(f"{self.base}/search", params)
            if not body:
                break
            page, following = parse_page(body)
            records += page
            if not page or not following or following == cursor:
                break
            cursor = following
        return records[:limit]


def _pmcid(value: str) -> str:
    """``123`` or ``pmc123`` → ``PMC123``."""
    value = value.strip().upper()
    return value if value.startswith("PMC") else f"PMC{value}"
