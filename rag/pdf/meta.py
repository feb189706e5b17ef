"""A paper's metadata from page 1's layout: title (the largest type), authors (the lines under it),
year (venue, copyright or arXiv line — never the file's date), DOI and arXiv id (printed in the paper,
never taken from its reference list)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.lang.citations import DOI
from rag.pdf.layout import Line

ARXIV = re.compile(r"arXiv(?:\s?e-?Print)?:\s?(\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})(v\d+)?", re.IGNORECASE)
_YEAR = re.compile(r"(?<![\d.])((?:19[5-9]|20[0-4])\d)(?!\d|\.\d)")
_BANNER = re.compile(
    r"^(proceedings|in proceedings|published|preprint|under review|accepted|arxiv|journal|vol\.|volume|"
    r"copyright|©|\(c\)|doi|https?://|www\.|issn|received|conference|workshop|findings of)|journal of|"
    r"\bjournal\b.*\b(?:published|society|press)\b",
    re.IGNORECASE,
)
_AFFILIATION = re.compile(
    r"@|universit|institut|department|dept\.|school of|college|laborator|faculty|centre|center for|inc\.|"
    r"corporation|research|google|microsoft|allen|hospital|academy|\b(?:usa|uk|china|germany|france)\b",
    re.IGNORECASE,
)
_MARKS = re.compile(r"[^\w\s.'’-]|\d+|_|(?<=[a-z])[α-ω]")  # affiliation marks: symbols, digits, Greek letters
_NAME = re.compile(r"^[A-Z][\w'’.-]*(?:\s+(?:[A-Z][\w'’.-]*|de|van|von|der|da|del|la|le|bin|al-\w+))+$")
_TITLE_TYPE = 1.15  # the title is set at least this much larger than the body
_TOP_SHARE = 0.6  # title and authors sit in the top of page 1


@dataclass
class Metadata:
    title: str = ""
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    doi: str | None = None
    arxiv_id: str | None = None
    front: set[int] = field(default_factory=set)  # ids of the lines that were title and authors


def _title(lines: list[Line], size: float) -> list[Line]:
    top = [ln for ln in lines if ln.top < _TOP_SHARE * ln.page_height and not _BANNER.search(ln.text)]
    candidates = [ln for ln in top if ln.size >= size * _TITLE_TYPE and sum(c.isalpha() for c in ln.text) > 3]
    if not candidates:
        return []
    # a title has words: a big two-word line on its own is a logo or figure text ("Paper Search")
    titled = [ln for ln in candidates if len(ln.text.split()) >= 3] or candidates
    biggest = max(ln.size for ln in titled)
    first = next(i for i, ln in enumerate(top) if ln.size >= biggest - 0.3 and ln in titled)
    while first > 0 and abs(top[first - 1].size - biggest) <= 0.6 and top[first].top - top[first - 1].bottom < biggest:
        first -= 1  # a short first line of the title ("Beyond Summarization:")
    picked = [top[first]]
    for ln in top[first + 1 :]:
        if abs(ln.size - biggest) > 0.6 or ln.top - picked[-1].bottom > 1.5 * biggest:
            break
        picked.append(ln)
    return picked


def _split_names(text: str) -> list[str]:
    return [" ".join(p.split()).strip(" .") for p in re.split(r",|;|\band\b|&|\s{2,}|" + _MARKS.pattern, text)]


def _names(text: str) -> list[str]:
    names = []
    for name in _split_names(text):  # already white-space normalised
        if _NAME.match(name) and len(name.split()) <= 5:
            names.append(name.title() if name.isupper() else name)
    return names


def _authors(lines: list[Line], after: list[Line], size: float) -> tuple[list[str], list[Line]]:
    """Names from the lines under the title, up to the abstract or the first line of running text.

    The block's lines are read as one text, so a name broken over two lines ("and Andrew" / "D. White")
    stays whole; an affiliation line gives at most the name before its first comma (ACM's layout).
    """
    if not after:
        return [], []
    start = lines.index(after[-1]) + 1
    parts: list[str] = []
    used: list[Line] = []
    for ln in lines[start:]:
        if ln.top > _TOP_SHARE * ln.page_height or re.match(
            r"^(abstract|introduction|\d+\s+introduction)", ln.text, re.I
        ):
            break
        if ln.size <= size * 1.01 and len(ln.text) > 60 and not _AFFILIATION.search(ln.text) and parts:
            break  # running text: the author block is over
        used.append(ln)
        if _BANNER.search(ln.text):
            continue
        parts.append(ln.text.split(",")[0] if _AFFILIATION.search(ln.text) else ln.text)
    names: list[str] = []
    carry = ""
    for part in parts:
        pieces = [p for p in _split_names(carry + part) if p]
        carry = ""
        if pieces and re.search(r"\band\s+[A-Z][a-z]+\W*$", part):
            carry = pieces.pop() + " "  # "and Andrew" / "D. White": a name broken over two lines
        for piece in pieces:
            names += [n for n in _names(piece) if n not in names and not _AFFILIATION.search(n)]
    return names, used


def _year(groups: list[list[Line]], arxiv_id: str | None) -> int | None:
    """The first year printed on a venue, copyright, date or journal line, looking at ``groups`` in order."""
    months = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
    # a venue, copyright or date line ("July 5 - 10, 2020", "Published 3 October 2008"), never a citation
    cue = re.compile(
        rf"©|\(c\)|copyright|proceedings|published|journal|conference|vol\.|\b{months}\s+\d|\d\s+{months}\s+\d{{4}}",
        re.IGNORECASE,
    )
    cited = re.compile(r"et al\.|,\s*(?:19|20)\d\d[a-z]?[);]")
    for group in groups:
        for ln in group:
            if cue.search(ln.text) and not cited.search(ln.text) and (m := _YEAR.search(ln.text)):
                return int(m.group(1))
    if arxiv_id and re.match(r"\d{4}\.", arxiv_id):
        return 2000 + int(arxiv_id[:2])  # new-style arXiv ids begin with the year and month: 2004.10706
    return None


def read_metadata(page1: list[Line], furniture: list[Line], size: float) -> Metadata:
    """Metadata from page 1: its body and furniture lines."""
    meta = Metadata()
    title_lines = _title(page1, size)
    meta.title = " ".join(ln.text for ln in title_lines).strip()
    meta.authors, author_lines = _authors(page1, title_lines, size)
    meta.front = {id(ln) for ln in title_lines + author_lines}
    everything = furniture + page1
    page_text = "\n".join(ln.text for ln in everything)
    if m := ARXIV.search(page_text):
        meta.arxiv_id = m.group(1) + (m.group(2) or "")
    small = [ln for ln in page1 if ln.size < size * 0.95]  # venue and copyright lines are set small
    meta.year = _year([furniture, small, page1[:40]], meta.arxiv_id)
    doi = DOI.search(page_text)  # page 1 only: the reader looks in the body next, never in the references
    meta.doi = doi.group(1) if doi else None
    return meta
