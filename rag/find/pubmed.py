"""PubMed through NCBI E-utilities: ESearch finds PMIDs, EFetch returns their records as XML.

Every request names the tool (and the contact e-mail and API key when set), as NCBI asks. Records carry
MEDLINE's publication types and MeSH headings, and the retraction, erratum and expression-of-concern links
PubMed keeps in ``CommentsCorrectionsList``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from rag.errors import SourceResponseError
from rag.find.base import Params, Record, Service, bare_doi, split_ids
from rag.find.text import ABSTRACT, clean, label_title, load_xml, merge_sections
from rag.lang.citations import DOI
from rag.types import Notice, NoticeKind, PaperSection

NAME = "pubmed"
TOOL = "rag"  # the `tool` NCBI asks every E-utilities client to send
EFETCH_BATCH = 200  # NCBI: up to about 200 ids per GET; longer lists belong in a POST
LAST_YEAR = 3000  # open upper end of a `mindate`/`maxdate` range

# CommentsCorrections reference types that point at a notice about this article.
_REF_NOTICES: dict[str, tuple[NoticeKind, str]] = {
    "RetractionIn": ("retraction", "Retraction in"),
    "RetractedandRepublishedIn": ("retraction", "Retracted and republished in"),
    "ExpressionOfConcernIn": ("expression_of_concern", "Expression of concern in"),
    "ErratumIn": ("correction", "Erratum in"),
    "CorrectedandRepublishedIn": ("correction", "Corrected and republished in"),
}
RETRACTED = "Retracted Publication"
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")  # a plausible publication year in a MedlineDate


def _text(node: ET.Element | None) -> str:
    """All the text of an element, inline markup (``<i>``, ``<sup>``) flattened."""
    return clean("".join(node.itertext())) if node is not None else ""


def parse_esearch(data: bytes) -> list[str]:
    """The PMIDs of an ESearch result, in its order."""
    root = load_xml(NAME, data)
    if root.tag != "eSearchResult":
        raise SourceResponseError(NAME, f"expected an eSearchResult, got <{root.tag}>")
    error = _text(root.find("ERROR"))
    if error:
        raise SourceResponseError(NAME, f"ESearch error: {error}")
    return [pmid for pmid in (_text(i) for i in root.iterfind("IdList/Id")) if pmid]


def parse_efetch(data: bytes) -> list[Record]:
    """The records of an EFetch ``PubmedArticleSet`` (journal articles and book chapters)."""
    root = load_xml(NAME, data)
    if root.tag != "PubmedArticleSet":
        detail = _text(root.find("ERROR")) or f"got <{root.tag}>"
        raise SourceResponseError(NAME, f"expected a PubmedArticleSet: {detail}")
    records = []
    for node in root:
        record = (
            _article(node) if node.tag == "PubmedArticle" else _book(node) if node.tag == "PubmedBookArticle" else None
        )
        if record is not None:
            records.append(record)
    return records


def _article(node: ET.Element) -> Record | None:
    citation = node.find("MedlineCitation")
    article = citation.find("Article") if citation is not None else None
    if citation is None or article is None:
        return None
    pmid = _text(citation.find("PMID"))
    if not pmid:
        return None
    ids = _article_ids(node.find("PubmedData/ArticleIdList"))
    pub_types = [t for t in (_text(p) for p in article.iterfind("PublicationTypeList/PublicationType")) if t]
    notices = _notices(citation, pub_types)
    journal = _text(article.find("Journal/Title")) or _text(citation.find("MedlineJournalInfo/MedlineTA"))
    return Record(
        source=NAME,
        key=f"{NAME}:{pmid}",
        title=_text(article.find("ArticleTitle")) or _text(article.find("VernacularTitle")),
        abstract=_abstract(article.find("Abstract")),
        authors=_authors(article.find("AuthorList")),
        year=_year(article.find("Journal/JournalIssue/PubDate")) or _year(article.find("ArticleDate")),
        journal=journal or None,
        doi=_doi(article) or bare_doi(ids.get("doi")),
        pmid=pmid,
        pmcid=ids.get("pmc"),
        pub_types=pub_types,
        mesh=[m for m in (_text(d) for d in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName")) if m],
        retracted=any(n.retracts for n in notices),
        notices=notices,
    )


def _book(node: ET.Element) -> Record | None:
    """A chapter or book from NCBI Bookshelf: title, abstract, authors, year; no journal or MeSH."""
    doc = node.find("BookDocument")
    pmid = _text(doc.find("PMID")) if doc is not None else ""
    if doc is None or not pmid:
        return None
    book_title = _text(doc.find("Book/BookTitle"))
    chapter = _text(doc.find("ArticleTitle"))
    ids = _article_ids(doc.find("ArticleIdList"))
    pub_types = [t for t in (_text(p) for p in doc.iter("PublicationType")) if t]
    return Record(
        source=NAME,
        key=f"{NAME}:{pmid}",
        title=chapter or book_title,
        abstract=_abstract(doc.find("Abstract")),
        authors=_authors(doc.find("AuthorList")) or _authors(doc.find("Book/AuthorList")),
        year=_year(doc.find("Book/PubDate")),
        journal=book_title if chapter else None,
        doi=bare_doi(ids.get("doi")),
        pmid=pmid,
        pmcid=ids.get("pmc"),
        pub_types=pub_types,
    )


def _article_ids(node: ET.Element | None) -> dict[str, str]:
    """PubmedData's identifiers by type (``doi``, ``pmc`` …); the PMC id always with its prefix."""
    ids: dict[str, str] = {}
    for i in node.iterfind("ArticleId") if node is not None else ():
        kind, value = i.get("IdType", ""), _text(i)
        if kind and value:
            ids.setdefault(kind, value)
    if "pmc" in ids and not ids["pmc"].upper().startswith("PMC"):
        ids["pmc"] = f"PMC{ids['pmc']}"
    return ids


def _doi(article: ET.Element) -> str | None:
    for loc in article.iterfind("ELocationID"):
        if loc.get("EIdType") == "doi" and loc.get("ValidYN", "Y") == "Y":
            return bare_doi(_text(loc))
    return None


def _abstract(node: ET.Element | None) -> list[PaperSection]:
    """One section per labelled part (``Label``, else a real ``NlmCategory``); unlabelled text is "Abstract"."""
    parts = []
    for part in node.iterfind("AbstractText") if node is not None else ():
        category = part.get("NlmCategory", "")
        label = part.get("Label") or (category if category.upper() != "UNASSIGNED" else "")
        parts.append((label_title(label) or ABSTRACT, _text(part)))
    return merge_sections(parts)


def _authors(node: ET.Element | None) -> list[str]:
    names = []
    for author in node.iterfind("Author") if node is not None else ():
        if author.get("ValidYN", "Y") != "Y":
            continue
        given = _text(author.find("ForeName")) or _text(author.find("Initials"))
        family = _text(author.find("LastName"))
        name = f"{given} {family}".strip() if family else _text(author.find("CollectiveName"))
        if name:
            names.append(name)
    return names


def _year(node: ET.Element | None) -> int | None:
    """``<Year>``, else the first year of a ``<MedlineDate>`` such as "1998 Dec-1999 Jan"."""
    if node is None:
        return None
    year = _text(node.find("Year"))
    if year.isdigit():
        return int(year)
    m = _YEAR.search(_text(node.find("MedlineDate")))
    return int(m.group(1)) if m else None


def _notices(citation: ET.Element, pub_types: list[str]) -> list[Notice]:
    notices = []
    for ref in citation.iterfind("CommentsCorrectionsList/CommentsCorrections"):
        known = _REF_NOTICES.get(ref.get("RefType", ""))
        if known is None:
            continue
        kind, label = known
        pmid, source = _text(ref.find("PMID")), _text(ref.find("RefSource"))
        doi = DOI.search(source)
        label = f"{label} PMID {pmid}" if pmid else f"{label} {source}".strip()
        notices.append(Notice(kind=kind, label=label, doi=bare_doi(doi.group(1)) if doi else None, source=NAME))
    # MEDLINE tags a retracted article before (or without) linking the notice itself.
    if RETRACTED in pub_types and not any(n.kind == "retraction" for n in notices):
        notices.append(Notice(kind="retraction", label=RETRACTED, source=NAME))
    return notices


class PubMed(Service):
    """PubMed search and PMID lookup (abstracts only; PMC full text comes through Europe PMC)."""

    name = NAME

    def search(self, query: str, limit: int, since: int | None = None) -> list[Record]:
        if limit < 1 or not query.strip():
            return []
        params: dict[str, str | int] = {"db": "pubmed", "term": query, "retmax": limit, "sort": "relevance"}
        if since:
            params |= {"mindate": since, "maxdate": LAST_YEAR, "datetype": "pdat"}
        return self._efetch(self._esearch(params))

    def lookup(self, ids: Sequence[str]) -> list[Record]:
        pmids = [p for p in split_ids(ids, "pmid") if p.isdigit()]
        # DOIs and PMC ids are found through ESearch's field tags.
        terms = [f'"{d}"[DOI]' for d in (bare_doi(v) for v in split_ids(ids, "doi")) if d and '"' not in d]
        terms += [f"{p}[PMCID]" for p in split_ids(ids, "pmcid")]
        if terms:
            # Twice as many as asked: a DOI can be shared by an article and its erratum's record.
            pmids += self._esearch({"db": "pubmed", "term": " OR ".join(terms), "retmax": 2 * len(terms)})
        return self._efetch(list(dict.fromkeys(pmids)))

    def _params(self, params: Params) -> dict[str, str | int]:
        """``params`` with the tool name, e-mail and API key NCBI asks for."""
        out: dict[str, str | int] = {**params, "tool": TOOL}
        if self.settings.email:
            out["email"] = self.settings.email
        if self.settings.ncbi_api_key:
            out["api_key"] = self.settings.ncbi_api_key.get_secret_value()
        return out

    def _esearch(self, params: Params) -> list[str]:
        body = self.fetch.get(f"{self.base}/esearch.fcgi", self._params(params))
        return parse_esearch(body) if body else []

    def _efetch(self, pmids: list[str]) -> list[Record]:
        """The records of ``pmids`` in their order, fetched in batches NCBI accepts as GET."""
        records: list[Record] = []
        for start in range(0, len(pmids), EFETCH_BATCH):
            batch = pmids[start : start + EFETCH_BATCH]
            params = {"db": "pubmed", "id": ",".join(batch), "retmode": "xml"}
            body = self.fetch.get(f"{self.base}/efetch.fcgi", self._params(params))
            if body:
                records += parse_efetch(body)
        rank = {pmid: i for i, pmid in enumerate(pmids)}
        return sorted(records, key=lambda r: rank.get(r.pmid or "", len(rank)))
