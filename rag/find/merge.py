"""One paper, however many services found it: records grouped by DOI, PMID, PMCID, arXiv id or
normalised title, then combined into one record and turned into a :class:`~rag.types.Paper`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from rag.find.base import Record
from rag.find.text import merge_notices
from rag.sidecar import normalize_title
from rag.types import Paper, PaperSection, Quality

# Whose metadata wins where services disagree: curated bibliographic databases first.
PRIORITY = ("pubmed", "europepmc", "crossref", "openalex", "arxiv")
_MIN_TITLE_WORDS = 5  # shorter titles ("Correction.", "Editorial") name many papers: never merge on them


def _keys(record: Record) -> list[str]:
    keys = [f"{kind}:{value}" for kind, value in _ids(record).items()]
    title = normalize_title(record.title)
    if len(title.split()) >= _MIN_TITLE_WORDS:
        keys.append(f"title:{title}")
    return keys


def _ids(record: Record) -> dict[str, str]:
    ids = {"doi": record.doi, "pmid": record.pmid, "pmcid": record.pmcid, "arxiv": record.arxiv_id}
    ids["openalex"] = record.openalex_id
    return {k: v for k, v in ids.items() if v}


def group(records: Sequence[Record]) -> list[list[Record]]:
    """Records that share any identifier (or a long normalised title), in order of first appearance."""
    parent = list(range(len(records)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, record in enumerate(records):
        for key in _keys(record):
            if key in owner:
                a, b = root(owner[key]), root(i)
                parent[max(a, b)] = min(a, b)
            else:
                owner[key] = i
    groups: dict[int, list[Record]] = {}
    for i, record in enumerate(records):
        groups.setdefault(root(i), []).append(record)
    return list(groups.values())


def _rank_of(source: str) -> int:
    return PRIORITY.index(source) if source in PRIORITY else len(PRIORITY)


def _rank(record: Record) -> int:
    return _rank_of(record.source.split("+")[0])  # a combined record ranks as its most trusted service


def _first(records: list[Record], field: str) -> object:
    return next((getattr(r, field) for r in records if getattr(r, field)), None)


def _abstract(records: list[Record]) -> list[PaperSection]:
    """A structured abstract (labelled parts) over a flat one; the longer among equals."""
    with_text = [r.abstract for r in records if any(s.text.strip() for s in r.abstract)]
    if not with_text:
        return []
    return max(with_text, key=lambda parts: (len(parts) > 1, sum(len(s.text) for s in parts)))


def combine(records: list[Record]) -> Record:
    """One record from a group: the most trusted service's fields, the union of types and notices."""
    ranked = sorted(records, key=_rank)
    fields = ("title", "authors", "year", "journal", "doi", "pmid", "pmcid", "arxiv_id", "openalex_id", "pdf_url")
    merged = ranked[0].model_copy(update={f: _first(ranked, f) or getattr(ranked[0], f) for f in fields})
    counts = [r.cited_by for r in ranked if r.cited_by is not None]
    access = [r.open_access for r in ranked if r.open_access is not None]
    return merged.model_copy(
        update={
            "source": "+".join(sorted({s for r in ranked for s in r.source.split("+")}, key=_rank_of)),
            "abstract": _abstract(ranked),
            "pub_types": list(dict.fromkeys(t for r in ranked for t in r.pub_types)),
            "mesh": list(dict.fromkeys(m for r in ranked for m in r.mesh)),
            "cited_by": max(counts) if counts else None,
            "notices": merge_notices(*(r.notices for r in ranked)),
            "retracted": any(r.retracted for r in ranked) or any(n.retracts for r in ranked for n in r.notices),
            "open_access": any(access) if access else None,
            "full_text": _first(ranked, "full_text"),
        }
    )


def doc_id(record: Record) -> str:
    """The paper's id in the store: ``pubmed:<pmid>`` (as the PubMedQA corpus uses), else ``arxiv:``
    (a preprint keeps one id whether arXiv or OpenAlex found it), ``doi:``, ``pmc:``, ``openalex:``; a
    record with none of these gets a hash of its key."""
    for prefix, value in (
        ("pubmed", record.pmid),
        ("arxiv", record.arxiv_id),
        ("doi", record.doi),
        ("pmc", record.pmcid),
        ("openalex", record.openalex_id),
    ):
        if value:
            return f"{prefix}:{value}"
    return f"{record.source}:{hashlib.sha256(record.key.encode()).hexdigest()[:16]}"


def to_paper(record: Record, paper_id: str | None = None) -> Paper | None:
    """The record as a paper to store (its full text when fetched, else its abstract); None without text."""
    full = record.full_text
    sections = list(full.sections) if full else []
    if full and record.abstract and not any(s.title.lower().startswith("abstract") for s in sections):
        sections = [*record.abstract, *sections]
    sections = sections or record.abstract
    if not any(s.text.strip() for s in sections):
        return None
    quality = Quality(
        pub_types=record.pub_types,
        cited_by=record.cited_by,
        retracted=record.retracted,
        notices=record.notices,
        journal=record.journal,
        open_access=record.open_access,
    )
    meta: dict[str, object] = {"found_by": record.source, **_ids(record)}
    meta.update({k: v for k, v in (("journal", record.journal), ("mesh", record.mesh)) if v})
    return Paper(
        doc_id=paper_id or doc_id(record),
        title=record.title,
        sections=sections,
        year=record.year,
        authors=record.authors,
        doi=record.doi,
        source=record.key,  # the most trusted service's own id for it; `found_by` names them all
        meta=meta,
        arxiv_id=record.arxiv_id,
        references=full.references if full else [],
        quality=quality,
    )
