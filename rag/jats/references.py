"""A JATS reference list read as :class:`~rag.types.Reference` entries: printed as their mixed citation
shows them, with title, year and DOI from the tagged fields (or, for untagged citations, from the text)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from rag.jats.markup import CITE, HEADING, all_of, clean, emit, flat, kid, kids, local_name, person
from rag.lang.citations import DOI
from rag.types import Reference

_MIN_TITLE_WORDS = 3  # an untagged citation's "title" shorter than this is an author list or a journal
_CITATIONS = ("element-citation", "mixed-citation", "nlm-citation", "citation")
_SOURCE_IS_TITLE = {"book", "report", "thesis", "web", "webpage", "software", "data", "dataset", "database"}
# The author list of a printed citation ends at an initial followed by neither another initial, "&"/"and", nor a
# "Surname, " ("Messerschmidt, J. L., Prendergast, G. C. & Messerschmidt, G. L. How cancers escape …").
_AUTHORS_END = re.compile(r"\b[A-Z]\.\s+(?![A-Z]\.|&|and\s|et al|[^\s,.]+(?:\s[^\s,.]+)?,\s)")


def reference(ref: ET.Element) -> Reference:
    """One ``<ref>``: printed as its mixed citation shows it, its fields from the tagged citation where there is one."""
    cites = [c for c in ref.iter() if local_name(c) in _CITATIONS]
    # a mixed citation prints punctuation between its parts; an element citation holds tagged fields only
    printed = next((c for c in cites if (c.text or "").strip() or any((k.tail or "").strip() for k in c)), None)
    raw = flat(printed, CITE) if printed is not None else (_built(cites[0]) if cites else flat(ref, CITE))
    tagged = sorted(cites, key=lambda c: local_name(c) != "element-citation")
    title = next((t for c in tagged if (t := _tagged_title(c))), None)
    if title is None and printed is not None:
        title = _untagged_title(printed)
    year_text = next((y for c in tagged if (y := flat(kid(c, "year")))), "")
    printed_years = list(re.finditer(r"\((\d{4})[a-z]?\)", raw))  # "… 9–19 (2024)."
    year = re.search(r"\d{4}", year_text) or (printed_years[-1] if printed_years else None)
    year = year or re.search(r"\b(?:1[89]|20)\d{2}\b", raw)
    dois = (flat(p) for p in all_of(ref, "pub-id") if (p.get("pub-id-type") or "").lower() == "doi")
    doi = DOI.search(next(dois, "") or raw)
    return Reference(
        raw=raw,
        title=title,
        year=int(re.sub(r"\D", "", year.group(0))[:4]) if year else None,
        doi=doi.group(1).lower() if doi else None,
    )


def _tagged_title(cite: ET.Element) -> str | None:
    title = flat(kid(cite, "article-title", "chapter-title", "data-title"), HEADING)
    if not title and (cite.get("publication-type") or "").lower() in _SOURCE_IS_TITLE:
        title = flat(kid(cite, "source"), HEADING)
    return title or None


def _untagged_title(cite: ET.Element) -> str | None:
    """The title of a citation printed without tags: after the authors ("Caner, A." / "Li, Y. et al."), up to the
    journal (its first italic) or the title's full stop."""
    out = [cite.text or ""]
    for child in cite:
        if local_name(child) in ("italic", "source") and not re.fullmatch(r"et al\.?", (child.text or "").strip()):
            break
        emit(child, out, CITE)
    lead = clean("".join(out))
    authors = re.search(r"\bet al\.?\s+", lead) or _AUTHORS_END.search(lead) or re.search(r"\.\s+", lead)
    rest = lead[authors.end() :] if authors else lead
    title = re.split(r"(?<=[a-z0-9?!)])\.\s", rest, maxsplit=1)[0].strip(" .")
    return title if len(title.split()) >= _MIN_TITLE_WORDS else None


def _built(cite: ET.Element) -> str:
    """A tagged citation printed: "Bartel DP (2004). Title. Cell 116(2):281–297."."""
    group = next((g for g in kids(cite, "person-group") if g.get("person-group-type", "author") == "author"), cite)
    names = ", ".join(filter(None, (person(n, True) for n in kids(group, "name", "string-name", "collab"))))
    authors = names + (" et al." if kid(group, "etal") is not None else "")
    v = {k: flat(kid(cite, k)) for k in ("year", "source", "volume", "issue", "fpage", "lpage", "elocation-id")}
    pages = "–".join(filter(None, (v["fpage"], v["lpage"]))) or v["elocation-id"]
    issue, pages = f"({v['issue']})" if v["issue"] else "", f":{pages}" if pages else ""
    where = f"{v['source']} {v['volume']}{issue}{pages}".strip()
    parts = [
        f"{authors} ({v['year']})" if authors and v["year"] else authors or v["year"],
        flat(kid(cite, "article-title", "chapter-title", "data-title")),
        f"In: {where}" if where and kid(cite, "chapter-title") is not None else where,
        ": ".join(filter(None, (flat(kid(cite, "publisher-loc")), flat(kid(cite, "publisher-name"))))),
        *(f"doi:{flat(p)}" for p in kids(cite, "pub-id") if (p.get("pub-id-type") or "").lower() == "doi"),
    ]
    stops = (".", "?", "!")
    return " ".join(p if p.endswith(stops) or p.startswith("doi:") else f"{p}." for p in map(str.strip, parts) if p)
