"""The reference list as entries: split by their numbers ("[12]", "12.") or by hanging indent, then
each read for its year, DOI and — where recognisable — title."""

from __future__ import annotations

import re

from rag.lang.citations import DOI
from rag.pdf.layout import Line
from rag.pdf.structure import join_line
from rag.types import Reference

_NUMBERED = re.compile(r"^(?:\[\d{1,3}\]|\d{1,3}\.)\s+")
_YEAR = re.compile(r"\b((?:19|20)\d{2})[a-z]?\b")
_MARGIN = 2.5  # points: a line this close to its column's left edge starts an entry (the rest hang indented)
_MIN_TITLE_WORDS = 3


def _starts(lines: list[Line]) -> list[bool]:
    numbered = sum(bool(_NUMBERED.match(ln.text)) for ln in lines)
    if numbered >= 0.2 * len(lines):
        return [bool(_NUMBERED.match(ln.text)) for ln in lines]
    left: dict[tuple[int, bool], float] = {}
    for ln in lines:
        key = (ln.page, ln.x0 > ln.page_width / 2)
        left[key] = min(left.get(key, ln.x0), ln.x0)
    return [ln.x0 - left[(ln.page, ln.x0 > ln.page_width / 2)] < _MARGIN for ln in lines]


def _entry_text(lines: list[Line], vocabulary: set[str]) -> str:
    text = ""
    for prev, ln in zip([None, *lines], lines, strict=False):
        text = join_line(text, bool(prev and prev.hyphen_end), ln.text, vocabulary)
    return text


def _title(raw: str) -> str | None:
    """Author-year style: the sentence after the year; otherwise the first long segment after the authors."""
    body = _NUMBERED.sub("", raw)
    year = _YEAR.search(body)
    if year:
        after = body[year.end() :].lstrip(").,: ")
        first = re.split(r"(?<=[a-z0-9?!])\.\s", after, maxsplit=1)[0]
        if len(first.split()) >= _MIN_TITLE_WORDS:
            return first.strip(" .")
    segments = [s.strip(" .") for s in re.split(r"(?<=[a-z0-9?!”\"])\.\s|[“”\"]", body) if s.strip(" .")]
    long = [s for s in segments[1:4] if len(s.split()) >= _MIN_TITLE_WORDS]
    return long[0] if long else None


def parse_references(lines: list[Line], vocabulary: set[str]) -> list[Reference]:
    """The entries of a reference list, in order."""
    if not lines:
        return []
    entries: list[list[Line]] = []
    for line, starts in zip(lines, _starts(lines), strict=True):
        if starts or not entries:
            entries.append([line])
        else:
            entries[-1].append(line)
    out = []
    for group in entries:
        raw = _entry_text(group, vocabulary)
        if len(raw) < 12:  # a stray page number or letter
            continue
        year = _YEAR.search(raw)
        doi = DOI.search(raw)
        year_value = int(year.group(1)) if year else None
        out.append(Reference(raw=raw, year=year_value, doi=doi.group(1) if doi else None, title=_title(raw)))
    return out
