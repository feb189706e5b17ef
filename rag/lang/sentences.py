"""Sentence splitting for scientific prose (shared by chunking, drafting and checking).

Rule-based and fast: a sentence ends at ``.``, ``?`` or ``!`` (plus closing quotes or brackets)
followed by white space, unless the word before is a known abbreviation (``et al.``, ``e.g.``,
``Fig.``, ``vs.``), an initial (``J. Smith``), or the next word starts in lower case. Decimals
(``0.05``) never split because no space follows the point. Blank lines always split.
"""

from __future__ import annotations

import re

_ABBREVIATIONS = {
    "al", "e.g", "i.e", "eg", "ie", "vs", "v", "fig", "figs", "eq", "eqs", "ref", "refs", "dr", "mr", "mrs", "ms",
    "prof", "no", "nos", "approx", "ca", "cf", "resp", "inc", "ltd", "co", "st", "jr", "sr", "u.s", "u.k", "etc",
    "vol", "pp", "p", "ed", "eds", "sec", "suppl", "tab", "min", "max", "mol", "wt", "spp", "sp", "var", "subsp",
    "dept", "univ", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}  # fmt: skip
_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)")
_PARAGRAPH = re.compile(r"\n\s*\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences in ``text`` (white space trimmed).

    >>> t = "Smith et al. found a 2.5-fold rise (p < 0.05). It was e.g. large! Next one."
    >>> [t[a:b] for a, b in sentence_spans(t)]
    ['Smith et al. found a 2.5-fold rise (p < 0.05).', 'It was e.g. large!', 'Next one.']
    """
    spans: list[tuple[int, int]] = []
    for para_start, para_end in _paragraphs(text):
        start = para_start
        for match in _END.finditer(text, para_start, para_end):
            end = match.end()
            if _is_boundary(text, match.start(), end, para_end):
                _add(spans, text, start, end)
                start = end
        _add(spans, text, start, para_end)
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``."""
    return [text[a:b] for a, b in sentence_spans(text)]


def _paragraphs(text: str) -> list[tuple[int, int]]:
    out, start = [], 0
    for match in _PARAGRAPH.finditer(text):
        out.append((start, match.start()))
        start = match.end()
    out.append((start, len(text)))
    return out


def _is_boundary(text: str, dot: int, end: int, limit: int) -> bool:
    if text[dot] == ".":
        word = re.search(r"([A-Za-z][A-Za-z.]*)$", text[max(0, dot - 12) : dot])
        if word:
            token = word.group(1).lower().rstrip(".")
            if token in _ABBREVIATIONS or (len(token) == 1 and word.group(1).isupper()):
                return False
    rest = text[end:limit].lstrip()
    if not rest:
        return True
    nxt = rest[0]
    # Lower-case continuation ("... 5 vs. 6 mg. and then") is rarely a new sentence; gene and
    # unit names that start sentences in lower case (mRNA, pH) are followed by an upper-case letter.
    if nxt.islower():
        return bool(re.match(r"[a-z]{1,3}[A-Z]", rest))
    return True


def _add(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
