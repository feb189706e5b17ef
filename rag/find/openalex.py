"""OpenAlex works: every discipline, with citation counts, open-access locations and a retraction flag.

Abstracts come as an inverted index (word → positions), rebuilt here into text. Requests carry ``mailto``
when an e-mail is set (OpenAlex's polite pool).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from rag.errors import SourceResponseError
from rag.find.base import Record, Service, bare_arxiv, bare_doi, split_ids
from rag.find.text import ABSTRACT, as_int, clean, load_json, plain_text
from rag.types import Notice, PaperSection

NAME = "openalex"
PER_PAGE_MAX = 200  # OpenAlex's largest per-page
ARXIV_DOI = "10.48550/arxiv."  # arXiv's DataCite DOIs: 10.48550/arXiv.<id>
_TRAILING_DIGITS = re.compile(r"(\d+)/?$")
# Publishers' pages often begin the abstract with its heading, which the index keeps as a first word.
_HEADING_WORDS = {"abstract", "abstract:", "summary", "summary:"}


def parse_works(data: bytes) -> list[Record]:
    """The works of an OpenAlex response: a list (``results``) or a single work."""
    obj = load_json(NAME, data)
    if not isinstance(obj, dict):
        raise SourceResponseError(NAME, "response is not a JSON object")
    if "error" in obj and "results" not in obj:
        raise SourceResponseError(NAME, clean(str(obj.get("message") or obj["error"])))
    works = obj["results"] if isinstance(obj.get("results"), list) else [obj]
    return [r for r in (parse_work(w) for w in works if isinstance(w, dict)) if r is not None]


def rebuild_abstract(index: dict[str, list[int]] | None) -> str:
    """The text of an ``abstract_inverted_index``: each word placed at each of its positions."""
    if not isinstance(index, dict):
        return ""
    placed = sorted((pos, word) for word, positions in index.items() for pos in positions or () if isinstance(pos, int))
    words = [word for _, word in placed]
    if len(words) > 1 and words[0].lower() in _HEADING_WORDS:
        words = words[1:]
    return clean(" ".join(words))


def parse_work(w: dict[str, Any]) -> Record | None:
    """One work as a record; None without an OpenAlex id or a DOI to name it by."""
    openalex_id = _openalex_id(w.get("id"))
    doi = bare_doi(w.get("doi"))
    if not openalex_id and not doi:
        return None
    ids = _dict(w, "ids")
    primary = _dict(w, "primary_location")
    abstract = rebuild_abstract(w.get("abstract_inverted_index"))
    retracted = w.get("is_retracted") is True
    return Record(
        source=NAME,
        key=f"{NAME}:{openalex_id}" if openalex_id else f"{NAME}:doi:{doi}",
        title=plain_text(w.get("display_name") or w.get("title")),
        abstract=[PaperSection(title=ABSTRACT, text=abstract)] if abstract else [],
        authors=_authors(w),
        year=as_int(w.get("publication_year")),
        journal=clean(_dict(primary, "source").get("display_name")) or None,
        doi=doi,
        pmid=_pmid(ids.get("pmid")),
        pmcid=_pmcid(ids.get("pmcid")),
        arxiv_id=_arxiv_id(w, doi),
        openalex_id=openalex_id,
        pub_types=[clean(w["type"])] if isinstance(w.get("type"), str) and w["type"] else [],
        cited_by=as_int(w.get("cited_by_count")),
        retracted=retracted,
        notices=[Notice(kind="retraction", label="Retracted", source=NAME)] if retracted else [],
        open_access=_is_oa(w),
        pdf_url=_pdf_url(w),
    )


def _dict(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _is_oa(w: dict[str, Any]) -> bool | None:
    is_oa = _dict(w, "open_access").get("is_oa")
    return is_oa if isinstance(is_oa, bool) else None


def _openalex_id(value: object) -> str | None:
    """``https://openalex.org/W2109415576`` → ``W2109415576``."""
    tail = str(value or "").rstrip("/").rsplit("/", 1)[-1]
    return tail.upper() if re.fullmatch(r"[Ww]\d+", tail) else None


def _pmid(value: object) -> str | None:
    """``https://pubmed.ncbi.nlm.nih.gov/25349395`` → ``25349395``."""
    m = _TRAILING_DIGITS.search(str(value or ""))
    return m.group(1) if m else None


def _pmcid(value: object) -> str | None:
    """``https://www.ncbi.nlm.nih.gov/pmc/articles/4234579`` (or ``…/PMC4234579``) → ``PMC4234579``."""
    m = _TRAILING_DIGITS.search(str(value or ""))
    return f"PMC{m.group(1)}" if m else None


def _authors(w: dict[str, Any]) -> list[str]:
    names = []
    for a in w.get("authorships") or []:
        if isinstance(a, dict):
            name = clean(_dict(a, "author").get("display_name") or a.get("raw_author_name"))
            if name:
                names.append(name)
    return names


def _locations(w: dict[str, Any]) -> list[dict[str, Any]]:
    """The best open-access location, the primary one, then all others."""
    listed = [x for x in w.get("locations") or [] if isinstance(x, dict)]
    return [x for x in (_dict(w, "best_oa_location"), _dict(w, "primary_location"), *listed) if x]


def _arxiv_id(w: dict[str, Any], doi: str | None) -> str | None:
    """From arXiv's DataCite DOI, else from an arxiv.org landing page among the locations."""
    if doi and doi.startswith(ARXIV_DOI):
        return bare_arxiv(doi[len(ARXIV_DOI) :])
    for location in _locations(w):
        url = str(location.get("landing_page_url") or "")
        if "arxiv.org/abs/" in url:
            return bare_arxiv(url)
    return None


def _pdf_url(w: dict[str, Any]) -> str | None:
    for location in _locations(w):
        if location.get("pdf_url") and location.get("is_oa") is not False:
            return str(location["pdf_url"])
    return None


class OpenAlex(Service):
    """OpenAlex search and DOI/PMID/PMCID/arXiv/OpenAlex-id lookup (metadata only; no full text)."""

    name = NAME

    def search(self, query: str, limit: int, since: int | None = None) -> list[Record]:
        if limit < 1 or not query.strip():
            return []
        per_page = min(limit, PER_PAGE_MAX)
        records: list[Record] = []
        page = 1
        while len(records) < limit:
            params: dict[str, str | int] = {"search": query, "per-page": per_page, "page": page, **self._mailto()}
            if since:
                params["filter"] = f"from_publication_date:{since}-01-01"
            body = self.fetch.get(f"{self.base}/works", params)
            found = parse_works(body) if body else []
            records += found
            if len(found) < per_page:  # a short page is the last one
                break
            page += 1
        return records[:limit]

    def lookup(self, ids: Sequence[str]) -> list[Record]:
        paths = [f"https://doi.org/{quote(d, safe='')}" for d in (bare_doi(v) for v in split_ids(ids, "doi")) if d]
        paths += [f"pmid:{p}" for p in split_ids(ids, "pmid") if p.isdigit()]
        paths += [f"pmcid:{p}" for p in split_ids(ids, "pmcid")]
        paths += [f"https://doi.org/{quote(ARXIV_DOI + a, safe='')}" for a in split_ids(ids, "arxiv")]
        paths += [w for w in (_openalex_id(v) for v in split_ids(ids, "openalex")) if w]
        records: dict[str, Record] = {}
        for path in dict.fromkeys(paths):
            body = self.fetch.get(f"{self.base}/works/{path}", self._mailto(), missing_ok=True)
            for record in parse_works(body) if body else []:
                records.setdefault(record.key, record)
        return list(records.values())

    def _mailto(self) -> dict[str, str]:
        return {"mailto": self.settings.email} if self.settings.email else {}
