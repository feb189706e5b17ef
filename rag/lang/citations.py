"""Citations: our ``[n]`` markers, the model's ``[S3]`` keys, and numbering sources by first citation.

Source numbers follow first appearance: the first paper cited is ``[1]``, whichever evidence
chunk it came from, so the drafters, the checker's repairs and a stream being renumbered on the
fly all agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.lang.pubtypes import design_label
from rag.types import Chunk, Evidence, Source

MARKER = re.compile(r"\s*\[\d+(?:\s*[,;–-]\s*\d+)*\]")
"""Our citation markers, ``[3]`` or ``[1, 2]``, with the white space before them."""
PAPER_MARKERS = re.compile(r"[ \t]?(?<![\w=∈(\[])\[(?!0\b)\d{1,3}(?:\s*[,;–-]\s*(?!0\b)\d{1,3})*\]")
"""The paper's own numeric citation markers: "[13]", "[44; 46]" — not an interval "[0, 1]" nor an index "x[2]"."""
KEY = re.compile(r"\[\s*(S?\d+(?:\s*[,;–-]\s*S?\d+)*)\s*\]")
"""A model's source keys: ``[S3]``, ``[S1, S4]``, ``[S2–S5]`` (and bare numbers)."""
ROUND_KEYS = re.compile(r"[(【]\s*(S\d+(?:\s*[,;–-]\s*S?\d+)*)\s*[)】]")
"""Keys in round or lenticular brackets, as small models write them: ``(S1, S2)``, ``【S1】``."""
DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+[^\s\"<>.,;)\]])", re.IGNORECASE)
"""A DOI as printed in text (group 1), without the sentence's closing punctuation."""
_MAX_RANGE = 20  # "[S1-S40]" is a typo or a dump, not a range to expand
_OPENERS = {"[": "]", "(": ")", "【": "】"}  # brackets a streamed key may come in


def strip_markers(text: str) -> str:
    """The sentence without its citation markers: what a judge compares with a passage."""
    return MARKER.sub("", text).strip()


def with_citation(text: str, *numbers: int) -> str:
    """Put ``[n]`` markers before a sentence's final punctuation: ``"It rose."`` → ``"It rose [3][5]."``."""
    text, marks = text.rstrip(), "".join(f"[{n}]" for n in numbers)
    return f"{text[:-1]} {marks}{text[-1]}" if text[-1:] in ".!?" else f"{text} {marks}."


def expand_keys(body: str) -> list[int]:
    """The source numbers inside one bracket: ``"S1, S3-S5"`` → ``[1, 3, 4, 5]``."""
    keys: list[int] = []
    for part in re.split(r"\s*[,;]\s*", body):
        m = re.fullmatch(r"S?(\d+)\s*[–-]\s*S?(\d+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            keys.extend(range(a, b + 1) if 0 < b - a < _MAX_RANGE else [a, b])
        elif re.fullmatch(r"S?\d+", part):
            keys.append(int(part.lstrip("S")))
    return keys


def source_for(sources: list[Source], chunk: Chunk) -> Source:
    """The source standing for ``chunk``'s paper, appended (numbered next) when it is new; records the chunk."""
    source = next((s for s in sources if s.doc_id == chunk.doc_id), None)
    if source is None:
        source = Source(
            number=len(sources) + 1,
            doc_id=chunk.doc_id,
            title=chunk.title,
            year=chunk.year,
            authors=chunk.authors,
            doi=chunk.doi,
            pub_types=chunk.pub_types,
            design=design_label(chunk.pub_types),
            cited_by=chunk.cited_by,
            retracted=chunk.retracted,
            notice=chunk.notice,
        )
        sources.append(source)
    if chunk.chunk_id not in source.chunk_ids:
        source.chunk_ids.append(chunk.chunk_id)
    return source


class SourceNumbers:
    """Maps evidence (by index) to stable ``[n]`` numbers in order of first citation, per paper."""

    def __init__(self, evidence: Sequence[Evidence]) -> None:
        self.evidence = evidence
        self.sources: list[Source] = []

    def number(self, ev_index: int) -> int:
        return source_for(self.sources, self.evidence[ev_index].chunk).number


def renumber_keys(raw: str, numbers: SourceNumbers, invalid: list[str]) -> tuple[str, list[int]]:
    """A model's sentence with its ``[S3]`` keys replaced by ``[n]``; keys out of range go to ``invalid``."""
    cites: list[int] = []
    n_evidence = len(numbers.evidence)

    def replace(m: re.Match[str]) -> str:
        out = []
        for key in expand_keys(m.group(1)):
            if 1 <= key <= n_evidence:
                n = numbers.number(key - 1)
                if n not in cites:
                    cites.append(n)
                out.append(f"[{n}]")
            else:
                invalid.append(f"S{key}")
        return "".join(out)

    sentence = KEY.sub(replace, raw)
    sentence = re.sub(r"(\[\d+\])\s+(?=\[\d+\])", r"\1", sentence).strip()  # "[1] [2]" -> "[1][2]"
    sentence = re.sub(r"\s+([.,;:])", r"\1", sentence)
    return sentence, cites


class StreamRenumber:
    """Passes streamed model text on with ``[S3]`` keys already renumbered to ``[n]``.

    Numbers follow first appearance, exactly as :func:`renumber_keys` assigns them.
    """

    _LONGEST_KEY = 40  # an open bracket this far back is not a citation after all

    def __init__(self, evidence: Sequence[Evidence], sink: Callable[[str], None]) -> None:
        self.numbers = SourceNumbers(evidence)
        self.n_evidence = len(evidence)
        self.sink = sink
        self._pending = ""

    def feed(self, piece: str) -> None:
        self._pending += piece
        out = []
        while self._pending:
            start = min((i for i in map(self._pending.find, _OPENERS) if i >= 0), default=-1)
            if start < 0:
                out.append(self._pending)
                self._pending = ""
                break
            out.append(self._pending[:start])
            end = self._pending.find(_OPENERS[self._pending[start]], start)
            if end < 0:
                if len(self._pending) - start > self._LONGEST_KEY:
                    out.append(self._pending[: start + 1])  # not a key: go on after its opening bracket
                    self._pending = self._pending[start + 1 :]
                    continue
                self._pending = self._pending[start:]
                break
            renumbered = self._renumber(self._pending[start : end + 1])
            if renumbered is None:  # a bracket, not a key: there may be keys inside it, "(see [S2])"
                out.append(self._pending[start])
                self._pending = self._pending[start + 1 :]
                continue
            out.append(renumbered)
            self._pending = self._pending[end + 1 :]
        text = "".join(out)
        if text:
            self.sink(text)

    def _renumber(self, token: str) -> str | None:
        match = KEY.fullmatch(token) or ROUND_KEYS.fullmatch(token)
        if not match:
            return None
        keys = [k for k in expand_keys(match.group(1)) if 1 <= k <= self.n_evidence]
        return "".join(f"[{self.numbers.number(k - 1)}]" for k in keys)

    def flush(self) -> None:
        if self._pending:
            self.sink(self._pending)
            self._pending = ""
