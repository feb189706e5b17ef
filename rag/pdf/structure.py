"""From clean lines to a paper's structure: headings, sections of paragraphs with page offsets,
and the reference list split off the body.

Pages are joined before sentences are split, so a sentence that runs over a page or column break
stays whole; line-break hyphens are rejoined when the joined word is a word; the paper's own
numeric citation markers ("[13]", "[44; 46]") are taken out of the running text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from rag.lang.citations import PAPER_MARKERS
from rag.lang.normalize import join_hyphenated
from rag.lang.roles import set_apart
from rag.pdf.layout import Line
from rag.types import PaperSection

_KNOWN = (
    r"abstract|introduction|background|related work|related literature|preliminaries|methods?|materials and methods|"
    r"methodology|approach|experiments?|experimental setup|experimental results|evaluation|results?|"
    r"results and discussion|discussion|analysis|conclusions?|conclusions? and future work|summary|future work|"
    r"limitations|ethics statement|ethical considerations|broader impacts?|acknowledge?ments?|references|"
    r"bibliography|literature cited|appendix|appendices|supplementary materials?|keywords|ccs concepts|index terms|"
    r"contents|author contributions|data availability|funding|competing interests|conflicts? of interest"
)
_KNOWN_HEADING = re.compile(rf"^(?:(?:\d+|[IVX]+|[A-Z])\.?\s+)?({_KNOWN})\s*:?$", re.IGNORECASE)
_NUMBERED = re.compile(r"^((?:\d{1,2}|[IVX]{1,5}|[A-H])(?:\.\d{1,2})*)\.?\s+([A-Z][^\n]*)$")
REFERENCES = re.compile(r"^(?:\d+\.?\s+)?(references|bibliography|literature cited|works cited)$", re.IGNORECASE)
APPENDIX = re.compile(r"^(?:[A-H](?:\.\d+)*\.?\s+[A-Z]|appendix|appendices|supplementary)", re.IGNORECASE)
# "Appendix. Model specification", "Appendix B: Proofs", "APPENDIX A" (a known word, then a title of its own)
_APPENDIX_HEADING = re.compile(r"^(?:appendix|appendices)(?:\s+[A-Z\d]{1,3})?[.:]?(?:\s+[A-Z][^.]*)?$", re.IGNORECASE)
_FIRST_ENTRY = re.compile(r"^\[1\]\s+\S")
_MAX_HEADING_WORDS = 12
_LONGEST_DECLARATION = 3000  # characters: about half a page of body text
_EMPHASIS = 1.08  # a heading is set this much larger than the body, or bold
_LARGER = 1.15  # an unnumbered, unknown heading must stand out more: this much larger
_PARAGRAPH_GAP = 0.9  # a vertical gap of this many body sizes starts a paragraph
_INDENT = 8.0  # points: a first-line indent starts a paragraph


@dataclass
class Heading:
    text: str
    top_level: bool


@dataclass
class Structure:
    sections: list[PaperSection] = field(default_factory=list)
    reference_lines: list[Line] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)
    set_apart: list[Line] = field(default_factory=list)  # figure and table text found inside sentences


def heading(line: Line, size: float) -> Heading | None:
    """Whether a line is a section heading, and of which level."""
    text = line.text.strip()
    if len(text) > 90 or len(text.split()) > _MAX_HEADING_WORDS or text.endswith((",", ";")):
        return None
    emphasis = line.bold or line.size >= size * _EMPHASIS
    capitals = text.isupper() and sum(c.isalpha() for c in text) > 3
    if _KNOWN_HEADING.match(text):
        return Heading(text, True) if (emphasis or capitals or line.size >= size * 0.95) else None
    if _APPENDIX_HEADING.match(text) and (emphasis or capitals):
        return Heading(text, True)
    numbered = _NUMBERED.match(text)
    if numbered and (emphasis or capitals) and not text.endswith(".") and sum(c.isalpha() for c in text) >= 3:
        return Heading(text, "." not in numbered.group(1))
    # an unnumbered heading in clearly larger type ("Theory", "Conclusion and outlook")
    if line.size >= size * _LARGER and len(text.split()) <= 8 and text[:1].isupper() and not text.endswith("."):
        return Heading(text, True)
    return None


def _continues_heading(head: Line, line: Line) -> bool:
    """A heading too long for its line goes on in the same type right below ("3 The LongEval guidelines for" /
    "faithfulness human evaluation")."""
    close = 0 <= line.top - head.bottom < 0.8 * head.size
    same = (
        abs(line.size - head.size) < 0.3 and line.bold == head.bold and abs(line.x0 - head.x0) < 0.25 * line.page_width
    )
    return close and same and len(line.text.split()) <= 8 and not line.text.endswith(".")


def join_line(text: str, soft_hyphen: bool, line: str, vocabulary: set[str]) -> str:
    """Append one line to running text: a word broken at the line end (pdfium's soft hyphen, or a printed
    hyphen) is rejoined when it is one word, kept hyphenated when a compound (``Navier-``/``Stokes``)."""
    if not text:
        return line
    tail = text[-80:]  # only the end matters (a paragraph can be long)
    head = re.search(r"([A-Za-z]{2,})" + ("$" if soft_hyphen else "-$"), tail)
    # after pdfium's soft hyphen a capital may go on the word ("Trace-"/"Monkey" when "TraceMonkey" is used)
    word = re.match(r"([A-Za-z][a-z]+)(.*)$" if soft_hyphen else r"([a-z]{2,})(.*)$", line, re.DOTALL)
    compound = re.search(r"-[A-Za-z]+-$", tail)  # "state-of-the-" / "art" keeps its hyphens
    if head and word and not compound:
        start = len(text) - len(tail) + head.start()
        return text[:start] + join_hyphenated(head.group(1), word.group(1), vocabulary) + word.group(2)
    if compound:
        return text + line
    if soft_hyphen:
        return f"{text}-{line}"  # "COVID-" / "19": the hyphen was the word's own
    return f"{text} {line}"


def _new_paragraph(prev: Line, line: Line, size: float) -> bool:
    if line.text[:1].islower() and not prev.text.endswith((".", "?", "!", ":")):
        return False  # an unfinished sentence goes on (past a figure or caption set apart)
    if prev.page != line.page or line.top < prev.top or abs(line.x0 - prev.x0) > 0.25 * line.page_width:
        return False  # a new page or column continues the sentence
    gap = line.top - prev.bottom
    indent = line.x0 - prev.x0
    return gap > _PARAGRAPH_GAP * size or (indent > _INDENT and prev.text.endswith((".", ":", "?")))


class _Builder:
    """Accumulates paragraphs into the current section, recording where each page begins."""

    def __init__(self, vocabulary: set[str]) -> None:
        self.vocabulary = vocabulary
        self.sections: list[PaperSection] = []
        self.title = ""
        self.paragraphs: list[str] = []
        self.pages: list[tuple[int, int]] = []
        self.current = ""
        self.prev: Line | None = None

    def _offset(self) -> int:
        return sum(len(p) + 2 for p in self.paragraphs) + len(self.current)

    def add(self, line: Line, size: float) -> None:
        if self.prev is not None and self.current and _new_paragraph(self.prev, line, size):
            self.end_paragraph()
        if not self.pages or self.pages[-1][1] != line.page:
            self.pages.append((self._offset() + (1 if self.current else 0), line.page))
        self.current = (
            join_line(self.current, self.prev.hyphen_end, line.text, self.vocabulary) if self.prev else line.text
        )
        self.prev = line

    def end_paragraph(self) -> None:
        if self.current.strip():
            self.paragraphs.append(self.current.strip())
        self.current = ""

    def start(self, title: str) -> None:
        self.end_paragraph()
        text = "\n\n".join(self.paragraphs)
        if text.strip():
            pages = [(min(o, len(text)), p) for o, p in self.pages]
            # declarations run a paragraph or two; half a page or more has most likely run on past a heading
            # not recognised, and searching someone's thanks is better than losing the text after them
            kind = (set_apart(self.title) if len(text) < _LONGEST_DECLARATION else None) or "body"
            self.sections.append(PaperSection(title=self.title, text=text, pages=pages, kind=kind))
        self.title, self.paragraphs, self.pages, self.prev = title, [], [], None


def _strip_markers(section: PaperSection) -> PaperSection:
    """The section without the paper's own citation markers, its page offsets moved to match."""
    spans = [m.span() for m in PAPER_MARKERS.finditer(section.text)]
    if not spans:
        return section

    def moved(offset: int) -> int:  # minus what was removed before it (a marker straddling it: up to its start)
        return offset - sum(min(b, offset) - a for a, b in spans if a < offset)

    pages = [(moved(o), p) for o, p in section.pages]
    return section.model_copy(update={"text": PAPER_MARKERS.sub("", section.text), "pages": pages})


_MAX_INTERRUPTION = 60  # lines: a figure or table set inside a sentence is shorter than this


def _prose(line: Line) -> bool:
    """Running text: several words, some of them lower case (table heads and axis labels are not)."""
    words = line.text.split()
    return len(words) >= 5 and sum(w[:1].islower() for w in words) >= 3


def _interruptions(lines: list[Line], size: float) -> set[int]:
    """Lines set inside a sentence that runs on after them (a figure or table at a page or column
    top, in pdfium's order): they are kept out of the sentence."""
    out: set[int] = set()
    i = 0
    while i < len(lines) - 1:
        if _prose(lines[i]) and not lines[i].text.endswith((".", "?", "!", ":")):
            j = i + 1
            while j < len(lines) and j - i <= _MAX_INTERRUPTION and not _prose(lines[j]):
                j += 1
            inside = range(i + 1, j)
            resumes = j < len(lines) and re.match(r"[a-z(]", lines[j].text)
            moved = j > i + 1 and (lines[i + 1].page != lines[i].page or lines[i + 1].top < lines[i].top)
            if moved and resumes and not any(heading(lines[k], size) for k in inside):
                out.update(inside)
                i = j
                continue
        i += 1
    return out


def _headings(lines: list[Line], size: float) -> dict[int, tuple[Heading, list[Line]]]:
    """Line index → heading and the lines it takes (one, or two when it wraps); a known heading seen
    before is text, not a heading (a screenshot of a paper inside a figure)."""
    out: dict[int, tuple[Heading, list[Line]]] = {}
    seen: set[str] = set()
    skip = -1
    for i, line in enumerate(lines):
        found = heading(line, size) if i > skip else None
        if not found or (not _NUMBERED.match(found.text) and found.text.lower() in seen):
            continue
        seen.add(found.text.lower())
        taken = [line]
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if nxt and _continues_heading(line, nxt) and not (_NUMBERED.match(nxt.text) or _KNOWN_HEADING.match(nxt.text)):
            taken.append(nxt)
            found = Heading(f"{found.text} {nxt.text}", found.top_level)
            skip = i + 1
        out[i] = (found, taken)
    return out


def build(lines: list[Line], size: float, vocabulary: set[str]) -> Structure:
    """Sections (top-level headings; subsection headings stay as their own paragraphs) and reference lines."""
    out = Structure()
    builder = _Builder(vocabulary)
    in_refs = False
    headings = _headings(lines, size)
    continuation = {id(ln) for _, taken in headings.values() for ln in taken[1:]}
    interrupting = _interruptions(lines, size)
    for i, line in enumerate(lines):
        if id(line) in continuation:
            continue
        found = headings[i][0] if i in headings else None
        if in_refs:
            if found and found.top_level and APPENDIX.match(found.text):
                in_refs = False
            else:
                out.reference_lines.append(line)
                continue
        if i in interrupting:
            out.set_apart.append(line)
            continue
        if (found and REFERENCES.match(found.text)) or (_FIRST_ENTRY.match(line.text) and i > len(lines) // 3):
            in_refs = True
            out.headings.append(found.text if found else "References")
            if not found:
                out.reference_lines.append(line)
            continue
        if found and found.top_level:
            builder.start(found.text)
            out.headings.append(found.text)
        elif found:
            builder.end_paragraph()  # a subsection heading is a paragraph of its own
            builder.add(replace(line, text=found.text), size)
            builder.end_paragraph()
            builder.prev = None
        else:
            builder.add(line, size)
    builder.start("")
    out.sections = [_strip_markers(s) for s in builder.sections]
    return out
