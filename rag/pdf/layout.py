"""Text lines with their layout, from pdfium's text layer, one page at a time.

pdfium gives characters in content-stream order (for LaTeX two-column papers: column by column),
ends lines with ``\\r\\n``, marks a line-break hyphen with U+FFFE and joins the word without a line
break, and knows each character's box, font size, weight and angle. A :class:`Line` keeps what the
reader needs of that: its text, page, position, font size and weight, and whether it is rotated
(margin stamps).
"""

from __future__ import annotations

import ctypes
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import CorruptFileError, EmptyInputError
from rag.lang.normalize import SOFT_BREAK, normalize

_LINE_BREAK = re.compile(r"\r\n|\r|\n|(?<=\ufffe)")  # after a soft hyphen, pdfium goes on without a break
_SAMPLES = 5  # characters sampled per line for its font size and weight (lines are set in one font)
_BOLD = 600  # pdfium font weights: 400 regular, 700 bold


@dataclass
class Line:
    text: str
    page: int  # 1-based
    x0: float
    top: float  # distance from the top of the page, in points
    bottom: float
    size: float  # printed font size in points
    bold: bool
    rotated: bool
    page_height: float
    page_width: float
    hyphen_end: bool = False  # the line ends in a word pdfium marked as hyphenated

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 0.0)


def open_pdf(path: Path) -> Any:
    """The pdfium document; a typed error naming the file when it cannot be opened."""
    import pypdfium2 as pdfium

    data = path.read_bytes()
    if not data.strip():
        raise EmptyInputError(path, "file is empty")
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise CorruptFileError(path, "not a PDF (no %PDF header)")
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise CorruptFileError(path, "PDF is encrypted (password protected); decrypt it first") from None
        raise CorruptFileError(path, f"corrupt PDF: {exc}") from None
    if len(doc) == 0:
        doc.close()
        raise EmptyInputError(path, "PDF has no pages")
    return doc


class _CharIndex:
    """Maps positions in pdfium's page text (a Python string) to pdfium's character indices: they differ
    where pdfium generated characters or a character lies outside the Basic Multilingual Plane."""

    def __init__(self, textpage: Any, raw: Any, text: str) -> None:
        self.textpage, self.raw = textpage, raw
        self.wide = [i for i, c in enumerate(text) if ord(c) > 0xFFFF]  # two UTF-16 units each

    def __call__(self, position: int) -> int:
        units = position + sum(1 for w in self.wide if w < position)
        return int(self.raw.FPDFText_GetCharIndexFromTextIndex(self.textpage, units))


def page_lines(doc: Any, index: int) -> list[Line]:
    """The lines of page ``index`` (0-based), in pdfium's reading order."""
    import pypdfium2.raw as raw

    page = doc[index]
    try:
        width, height = page.get_size()
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range()
            chars = _CharIndex(textpage, raw, text)
            lines = []
            start = 0
            for match in [*_LINE_BREAK.finditer(text), None]:
                end = match.start() if match else len(text)
                line = _line(textpage, raw, chars, text[start:end], start, (index + 1, width, height))
                if line is not None:
                    lines.append(line)
                start = match.end() if match else end
            return lines
        finally:
            textpage.close()
    finally:
        page.close()


def _line(textpage: Any, raw: Any, chars: _CharIndex, content: str, start: int, where: tuple) -> Line | None:
    page, width, height = where
    text = normalize(content.replace(SOFT_BREAK, ""), accents=True).strip()
    if not text:
        return None
    positions = [start + i for i, c in enumerate(content) if not c.isspace() and c != SOFT_BREAK]
    step = max(len(positions) // _SAMPLES, 1)
    # only the characters the line is measured by are looked up (one pdfium call each)
    wanted = dict.fromkeys([positions[0], *positions[::step][:_SAMPLES], positions[-1]])
    mapped = {p: chars(p) for p in wanted}
    sample = [i for i in (mapped[p] for p in positions[::step][:_SAMPLES]) if i >= 0]
    ends = [i for i in (mapped[positions[0]], mapped[positions[-1]]) if i >= 0]
    if not sample or not ends:
        return None
    sizes = sorted(_size(textpage, raw, i) for i in sample)
    weights = sorted(raw.FPDFText_GetFontWeight(textpage, i) for i in sample)
    boxes = [textpage.get_charbox(i) for i in (ends[0], ends[-1])]
    angle = raw.FPDFText_GetCharAngle(textpage, ends[0])
    rotated = angle > 0.1 and abs(angle - 2 * math.pi) > 0.1  # radians; full turn is upright too
    return Line(
        text=text,
        page=page,
        x0=min(b[0] for b in boxes),
        top=min(height - b[3] for b in boxes),
        bottom=max(height - b[1] for b in boxes),
        size=round(sizes[len(sizes) // 2], 1),
        bold=weights[len(weights) // 2] >= _BOLD,
        rotated=rotated,
        page_height=height,
        page_width=width,
        hyphen_end=content.endswith(SOFT_BREAK),
    )


def _size(textpage: Any, raw: Any, index: int) -> float:
    """The size a character is printed at: its font size times the vertical scale of its text matrix
    (TeX output often sets every font at size 1 and scales it by the matrix)."""
    matrix = raw.FS_MATRIX()
    size = raw.FPDFText_GetFontSize(textpage, index)
    if raw.FPDFText_GetMatrix(textpage, index, ctypes.byref(matrix)):
        size *= math.hypot(matrix.c, matrix.d) or 1.0
    return float(size)


def document_lines(doc: Any, warnings: list[str]) -> Iterator[list[Line]]:
    """Each page's lines, one page at a time (a 500-page file never sits in memory as text objects);
    a page pdfium cannot read is skipped with a warning, the rest of the file still read."""
    import pypdfium2 as pdfium

    for index in range(len(doc)):
        try:
            yield page_lines(doc, index)
        except (pdfium.PdfiumError, ValueError, AssertionError) as exc:  # pypdfium2 asserts on some damage
            warnings.append(f"page {index + 1} could not be read ({type(exc).__name__}: {exc}); skipped")
            yield []
