"""JATS XML full text (Europe PMC ``fullTextXML``, PMC open-access ``.nxml``) read into a :class:`~rag.types.Paper`
the way :mod:`rag.pdf` reads a PDF: the abstract first, then the body's sections in order, figure and table
captions and table text as sections of their own (never spliced into the sentences around them), the reference
list split off, and no furniture (permissions, affiliations, acknowledgements, footnotes, funding statements).

The XML says what the PDF reader has to guess; heuristics are left only where a publisher leaves structure
out: the title of an untagged citation, and which body sections are declarations rather than findings.
"""

from __future__ import annotations

import html.entities
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from rag.errors import CorruptFileError, EmptyInputError
from rag.jats.markup import (
    FLOATS,
    HEADING,
    TABLE,
    all_of,
    blocks,
    flat,
    heading_of,
    kid,
    kids,
    local_name,
    person,
)
from rag.jats.references import reference
from rag.lang.citations import DOI
from rag.lang.roles import DECLARATIONS, SECTION_PATH
from rag.types import Paper, PaperSection

READER_VERSION = "jats-1"
"""Changes whenever the reader would read the same file differently (a re-ingest then re-reads it)."""

_SNIFF_BYTES = 8192  # the prolog, DOCTYPE and the article's start tag fit in this even behind a wrapper
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_SNIFF_ARTICLE = re.compile(r"<(?:[\w.-]+:)?article[\s>/]")
_SNIFF_JATS = re.compile(
    r"-//NLM//DTD|jats\.nlm\.nih\.gov|dtd\.nlm\.nih\.gov|<(?:[\w.-]+:)?(?:front|article-meta|journal-meta)[\s>]"
)
_HTML_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = {"amp", "lt", "gt", "quot", "apos"}
_OTHER_ABSTRACTS = {"graphical", "teaser", "toc", "precis", "short", "web-summary", "key-points", "highlights"}
_PUBLISHED = {"epub", "ppub", "epub-ppub", "epubr", "pub", "electronic", "print"}
_NOT_PUBLISHED = {"pmc-release", "nihms-submitted", "manuscript", "received", "accepted", "rev-recd", "retracted"}
# declarations, and in JATS also the supplementary-file stubs and abbreviation lists: none is the paper's content
_DECLARATION = re.compile(
    rf"^(?:[\dA-Z]{{1,3}}\.?\s+)?(?:{DECLARATIONS}|supplementary (?:data|materials?|information)|"
    r"supporting information|abbreviations)\W*$",
    re.IGNORECASE,
)
_DECLARATION_TYPE = re.compile(r"supplementary|coi|conflict|competing|funding|acknowledg|contribution", re.I)


@dataclass
class _Reading:
    sections: list[PaperSection]
    floats: list[ET.Element]


def _section(sec: ET.Element, parents: list[str], into: _Reading, nest: bool = True, default: str = "") -> None:
    """One ``<sec>`` (or abstract, appendix) and, after its own text, each nested one as a section of its own —
    titled by the path of headings when ``nest``; declarations (funding, competing interests …) are left out."""
    heading = heading_of(sec).rstrip(" :") or default
    if _DECLARATION_TYPE.search(sec.get("sec-type") or "") or _DECLARATION.match(heading):
        return
    path = ([*parents, heading] if nest else [heading]) if heading else parents
    paragraphs: list[str] = []
    for child in sec:
        if local_name(child) == "sec":
            _add(into, path, paragraphs)
            _section(child, path, into, nest)
        else:
            paragraphs.extend(blocks(child))
            into.floats.extend(all_of(child, *FLOATS))
    _add(into, path, paragraphs)


def _add(into: _Reading, path: list[str], paragraphs: list[str]) -> None:
    if paragraphs:
        into.sections.append(PaperSection(title=SECTION_PATH.join(path), text="\n\n".join(paragraphs)))
    paragraphs.clear()


def _text_sections(article: ET.Element, meta: ET.Element) -> _Reading:
    """Abstract, body, appendices (and sections set in the back matter); the floats met on the way, in order."""
    reading = _Reading([], [])
    abstracts = kids(meta, "abstract")  # the main one: no type, else none of the graphical, teaser, TOC kinds
    typed = [a for a in abstracts if (a.get("abstract-type") or "").lower() not in _OTHER_ABSTRACTS]
    abstract = next(iter([a for a in abstracts if not a.get("abstract-type")] or typed), None)
    if abstract is not None:
        _section(abstract, [], _Reading(reading.sections, []), nest=False, default="Abstract")  # no graphical floats
    body = kid(article, "body")
    if body is not None:
        _section(body, [], reading)
    back = kid(article, "back")
    for part in kids(back, "sec", "app", "app-group") if back is not None else []:
        apps = kids(part, "app") if local_name(part) == "app-group" else [part]
        for app in apps:
            _section(app, [], reading, default="Appendix" if local_name(app) == "app" else "")
    for group in kids(article, "floats-group"):
        reading.floats.extend(all_of(group, *FLOATS))
    return reading


def _float_sections(el: ET.Element) -> list[PaperSection]:
    """A figure or table as its caption (``kind="caption"``, titled by its label) and its cell text (``"table"``)."""
    label = flat(kid(el, "label"), HEADING)
    title = label.rstrip(".: ") or ("Table" if local_name(el) == "table-wrap" else "Figure")
    caption_el = kid(el, "caption")
    caption = " ".join(blocks(caption_el)) if caption_el is not None else ""
    out = []
    if caption:
        out.append(PaperSection(title=title, text=f"{label} {caption}".strip(), kind="caption"))
    rows = [
        " | ".join(flat(c, TABLE) for c in row if local_name(c) in ("td", "th", "entry"))
        for row in all_of(el, "tr", "row")
    ]
    rows = [r for r in rows if r.strip(" |")]
    for foot in all_of(el, "table-wrap-foot"):  # the table's own notes ("ᵃ P < 0.05") belong with its cells
        notes = list(all_of(foot, "fn")) or [foot]
        rows += [t for t in (flat(n) for n in notes) if t]
    if rows:
        out.append(PaperSection(title=title, text="\n".join(rows), kind="table"))
    return out


def _authors(meta: ET.Element) -> list[str]:
    names = []
    for contrib in (c for g in kids(meta, "contrib-group") for c in kids(g, "contrib")):
        if (contrib.get("contrib-type") or "author").lower() != "author":
            continue
        name = kid(contrib, "name", "string-name", "name-alternatives", "collab", "collab-alternatives")
        text = person(name) if name is not None else ""
        if text:
            names.append(text)
    return names


def _year(meta: ET.Element) -> int | None:
    """The earliest year the article came out (online or in print); the issue's year only failing that."""
    found = []
    for date in kids(meta, "pub-date"):
        kind = (date.get("pub-type") or date.get("date-type") or "").lower()
        year = flat(kid(date, "year"))
        if re.fullmatch(r"\d{4}", year) and kind not in _NOT_PUBLISHED:
            published = kind in _PUBLISHED or date.get("publication-format") in ("electronic", "print")
            found.append((0 if published else 1 if kind in ("collection", "issue") else 2, int(year)))
    return min(found)[1] if found else None


def _metadata(front: ET.Element, meta: ET.Element) -> tuple[str | None, dict[str, object]]:
    """The DOI; PubMed and PMC ids, journal and licence where the article gives them."""
    ids = {(el.get("pub-id-type") or "").lower(): flat(el) for el in reversed(kids(meta, "article-id"))}
    doi = DOI.search(ids.get("doi", ""))  # "https://doi.org/10.…" and "doi:10.…" are the DOI too
    out: dict[str, object] = {"reader": READER_VERSION}
    if ids.get("pmid"):
        out["pmid"] = ids["pmid"]
    pmc = re.search(r"\d+", ids.get("pmcid") or ids.get("pmc") or "")
    if pmc:
        out["pmcid"] = f"PMC{pmc.group(0)}"
    journal = flat(next(all_of(front, "journal-title"), None))
    if journal:
        out["journal"] = journal
    licence = next(all_of(meta, "license"), None)
    if licence is not None:
        href = licence.get(_XLINK_HREF) or flat(next(all_of(licence, "license_ref"), None))
        text = href or re.split(r"(?<=[.!?])\s", flat(licence), maxsplit=1)[0]
        if text:
            out["license"] = text
    return (doi.group(1).lower() if doi else None), out


def _parse(data: bytes, name: str) -> ET.Element:
    if not data.strip():
        raise EmptyInputError(name, "file is empty")

    def entity(m: re.Match[bytes]) -> bytes:  # HTML entities (&nbsp;) that only the DTD, never fetched, defines
        word = m.group(1).decode()
        code = None if word in _XML_ENTITIES else html.entities.name2codepoint.get(word)
        return m.group(0) if code is None else f"&#{code};".encode()

    try:
        try:
            return ET.fromstring(data)
        except ET.ParseError as exc:
            if "undefined entity" not in str(exc):
                raise
            return ET.fromstring(_HTML_ENTITY.sub(entity, data))
    except (ET.ParseError, LookupError) as exc:  # LookupError: an encoding Python does not know
        raise CorruptFileError(name, f"malformed XML: {exc}") from None


def _article(root: ET.Element, name: str) -> ET.Element:
    """The ``<article>``: the root, or the first inside a wrapper (``<pmc-articleset>``, OAI-PMH ``<record>``)."""
    article = root if local_name(root) == "article" else next(all_of(root, "article"), None)
    if article is None or kid(article, "front", "body") is None:
        raise CorruptFileError(
            name, f"not a JATS article: <{local_name(root)}> holds no <article> with <front> or <body>"
        )
    return article


def is_jats(data: bytes) -> bool:
    """Whether ``data`` looks like JATS (or NLM) article XML, from its first few KB: an ``<article>`` element
    and a JATS/NLM DTD, a JATS namespace or JATS front matter."""
    head = data[:_SNIFF_BYTES]
    text = head.decode("utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8", "ignore")
    return bool(_SNIFF_ARTICLE.search(text) and _SNIFF_JATS.search(text))


def read_jats(data: bytes, doc_id: str, source: str = "") -> Paper:
    """Read one JATS article; :class:`~rag.errors.CorruptFileError` for XML that does not parse or is no JATS
    article, :class:`~rag.errors.EmptyInputError` for one with neither abstract nor body text."""
    name = source or doc_id
    article = _article(_parse(data, name), name)
    front = kid(article, "front")
    front = front if front is not None else ET.Element("front")
    meta = kid(front, "article-meta")
    meta = meta if meta is not None else ET.Element("article-meta")
    reading = _text_sections(article, meta)
    if not reading.sections:
        raise EmptyInputError(name, "JATS article has no abstract and no body text")
    floats = [s for el in reading.floats for s in _float_sections(el)]
    group = kid(meta, "title-group")
    title = flat(kid(group, "article-title"), HEADING)
    subtitle = flat(kid(group, "subtitle"), HEADING)
    back = kid(article, "back")
    refs = [reference(r) for part in (kid(article, "body"), back) if part is not None for r in all_of(part, "ref")]
    doi, extra = _metadata(front, meta)
    return Paper(
        doc_id=doc_id,
        title=f"{title}: {subtitle}" if title and subtitle else title,
        sections=reading.sections + floats,
        year=_year(meta),
        authors=_authors(meta),
        doi=doi,
        source=source,
        meta=extra,
        references=refs,
    )
