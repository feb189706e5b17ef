"""Page furniture and other text that is not the paper's running text.

Removed: lines repeated at the page edges across pages (running headers and footers, digits
masked so "2 / 21" and "3 / 21" match), bare page numbers, rotated margin stamps (arXiv), and
permission/copyright blocks. Set apart: footnotes (small type at the page foot), captions
("Figure 3: ..." to the end of its block) and figure debris (lines that are mostly not letters).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from rag.lang.furniture import ARXIV_STAMP, PAGE_NUMBER, PERMISSION
from rag.pdf.layout import Line
from rag.pdf.structure import APPENDIX, REFERENCES

_EDGE_LINES = 3  # lines at the top and at the foot of a page that may be furniture
_MARGIN = 0.12  # ... when they sit in the top or bottom 12% of the page (where headers and footers go)
_REPEATED_SHARE = 0.3  # on this share of pages (alternating headers are on half of them)
_MIN_REPEATS = 2  # a 4-page paper's alternating header is on 2 pages
CAPTION = re.compile(r"^((?:figure|fig\.|table|algorithm|listing)\s*[0-9A-Z]{1,3})[.:|]", re.IGNORECASE)
"""A caption's first line; group 1 is its label ("Figure 3")."""
_FOOT_ZONE = 0.85  # footnotes live in the bottom 15% of a page
_SMALL = 0.92  # type this much smaller than the body is footnote/caption/table type
_MIN_LETTERS = 0.5  # a line with fewer letters than this share is figure debris (unless it holds numbers)
_FIGURE_TYPE = 0.85  # type this much smaller than the body, off page 1, is figure or table text


@dataclass
class Cleaned:
    body: list[Line] = field(default_factory=list)
    captions: list[list[Line]] = field(default_factory=list)
    tables: list[list[Line]] = field(default_factory=list)  # table and figure text, kept out of the running text
    furniture: list[Line] = field(default_factory=list)  # removed, but metadata may come from it


def _mask(text: str) -> str:
    return re.sub(r"\d+", "#", text.strip().lower())


def body_size(pages: list[list[Line]]) -> float:
    """The font size most of the text is set in (by characters)."""
    sizes: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            sizes[line.size] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


def _edges(lines: list[Line]) -> list[Line]:
    """The first and last lines of a page that sit in its top or bottom margin."""
    by_top = sorted(lines, key=lambda ln: ln.top)
    ends = by_top[:_EDGE_LINES] + by_top[-_EDGE_LINES:]
    return [ln for ln in ends if ln.top < _MARGIN * ln.page_height or ln.bottom > (1 - _MARGIN) * ln.page_height]


def repeated_edge_lines(edges: list[list[Line]]) -> set[str]:
    """Masked texts of lines at page edges (one list per page) that repeat across pages: running headers and footers."""
    counts: Counter[str] = Counter()
    for lines in edges:
        counts.update({_mask(ln.text) for ln in lines})
    need = max(_MIN_REPEATS, _REPEATED_SHARE * len(edges))
    return {text for text, n in counts.items() if n >= need and len(text) > 1}


def _is_furniture(line: Line, edges: set[int], repeated: set[str]) -> bool:
    if line.rotated or ARXIV_STAMP.match(line.text):
        return True
    return id(line) in edges and (_mask(line.text) in repeated or bool(PAGE_NUMBER.match(line.text)))


def _debris(text: str) -> bool:
    letters = sum(c.isalpha() for c in text)
    digits = sum(c.isdigit() for c in text)
    return len(text) > 2 and letters < _MIN_LETTERS * len(text) and digits < 2


def clean_pages(pages: list[list[Line]], size: float) -> Cleaned:
    """Split every page's lines into body, captions and furniture (in reading order)."""
    page_edges = [_edges(lines) for lines in pages]
    repeated = repeated_edge_lines(page_edges) if len(pages) >= _MIN_REPEATS else set()
    out = Cleaned()
    in_refs = False  # the reference list is set small: it is no figure text
    for lines, edge_lines in zip(pages, page_edges, strict=True):
        edges = {id(ln) for ln in edge_lines}
        caption: list[Line] | None = None
        permission = False
        for line in lines:
            if REFERENCES.match(line.text):
                in_refs = True
            elif in_refs and line.bold and APPENDIX.match(line.text):
                in_refs = False
            if _is_furniture(line, edges, repeated):
                out.furniture.append(line)
                continue
            if PERMISSION.match(line.text):
                permission = True
            if permission and (line.size < size * _SMALL or PERMISSION.match(line.text)):
                out.furniture.append(line)
                continue
            permission = False
            if caption is not None and _continues_caption(caption[-1], line, size):
                caption.append(line)
                continue
            caption = None
            if CAPTION.match(line.text):
                caption = [line]
                out.captions.append(caption)
            elif _footnote(line, size) or _debris(line.text):
                out.furniture.append(line)
            elif _figure_text(line, size) and not in_refs:
                extend_group(out.tables, line)
            else:
                out.body.append(line)
    _divert_table_runs(out)
    return out


def tabular(text: str) -> bool:
    """A table row: mostly digits, few words."""
    digits = sum(c.isdigit() for c in text)
    return digits >= 0.3 * max(len(text.replace(" ", "")), 1) and len(text.split()) < 10


def _figure_text(line: Line, size: float) -> bool:
    return line.page > 1 and line.size < size * _FIGURE_TYPE


def extend_group(groups: list[list[Line]], line: Line) -> None:
    if groups and groups[-1][-1].page == line.page:
        groups[-1].append(line)
    else:
        groups.append([line])


def _divert_table_runs(out: Cleaned) -> None:
    """Runs of two or more table rows in body type leave the running text (they would split its sentences)."""
    keep: list[Line] = []
    run: list[Line] = []
    for line in [*out.body, None]:
        if line is not None and tabular(line.text):
            run.append(line)
            continue
        if len(run) >= 2:
            for row in run:
                extend_group(out.tables, row)
        else:
            keep += run
        run = []
        if line is not None:
            keep.append(line)
    out.body = keep


def _continues_caption(prev: Line, line: Line, size: float) -> bool:
    """A caption runs on in lines of its own type close below it; in body type it stops at a sentence end."""
    same_type = abs(line.size - prev.size) < 0.6
    close = -2 <= line.top - prev.bottom < 1.2 * max(prev.height, prev.size)
    return same_type and close and (line.size < size * _SMALL or not prev.text.endswith("."))


def _footnote(line: Line, size: float) -> bool:
    return line.top > _FOOT_ZONE * line.page_height and line.size < size * _SMALL
