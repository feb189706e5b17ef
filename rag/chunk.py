"""Token-aware chunking: papers → :class:`~rag.types.Chunk` objects.

Sentences are packed into chunks of at most ``max_tokens`` tiktoken tokens, never crossing a
section; the last sentences of a chunk (up to ``overlap_tokens``) start the next one so that
a claim split across a boundary is still found whole. A sentence longer than a chunk is cut at
token boundaries.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rag.lang.sentences import sentence_spans
from rag.settings import ChunkSettings
from rag.tokens import encoding
from rag.types import Chunk, Paper, PaperSection, Quality


def paper_hash(paper: Paper, settings: ChunkSettings) -> str:
    """Hash of everything that decides a paper's chunks: its content and the chunking settings."""
    payload = json.dumps(
        [
            paper.title,
            [_section_payload(s) for s in paper.sections],
            paper.year,
            paper.authors,
            paper.doi,
            settings.model_dump(),
            # a PDF read anew (another reader version, OCR on) is stored anew, with its fresh report
            *([paper.meta["source_sha"]] if paper.meta.get("source_sha") else []),
            # a paper retracted (or re-counted) since it was stored is stored anew, so its chunks say so
            *([paper.quality.model_dump()] if paper.quality and not paper.quality.empty else []),
        ],
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _section_payload(section: PaperSection) -> dict[str, object]:
    """What of a section decides its chunks. Fields added later count only when set, so papers
    stored before them keep their hash (and are not re-embedded for nothing)."""
    payload: dict[str, object] = {"title": section.title, "text": section.text}
    if section.kind != "body":
        payload["kind"] = section.kind
    if section.pages:
        payload["pages"] = section.pages
    return payload


SET_APART = ("declaration", "keywords")
"""Section kinds kept with the paper but never chunked: acknowledgments and keyword lists answer nothing asked."""
_Unit = tuple[str, int, int | None, int | None]  # text, tokens, first page, last page


def _units(section: PaperSection, enc: Any, max_tokens: int) -> list[_Unit]:
    """A section's sentences with their token counts and pages; a sentence longer than a chunk (a
    table, a run-on list) is cut at its line breaks first, then at token boundaries."""
    out: list[_Unit] = []
    for a, b in sentence_spans(section.text):
        first, last = section.page_at(a), section.page_at(max(b - 1, a))
        sentence = section.text[a:b]
        tokens = enc.encode(sentence, disallowed_special=())
        if len(tokens) <= max_tokens:
            out.append((sentence, len(tokens), first, last))
            continue
        for line in _lines_within(sentence, enc, max_tokens):
            line_tokens = enc.encode(line, disallowed_special=())
            for i in range(0, len(line_tokens), max_tokens):
                part = line_tokens[i : i + max_tokens]
                out.append((enc.decode(part).strip(), len(part), first, last))
    return out


def _lines_within(sentence: str, enc: Any, max_tokens: int) -> list[str]:
    """Lines packed up to ``max_tokens`` each (table rows stay whole where they fit)."""
    groups: list[str] = []
    for line in sentence.split("\n"):
        joined = f"{groups[-1]}\n{line}" if groups else line
        if groups and len(enc.encode(joined, disallowed_special=())) <= max_tokens:
            groups[-1] = joined
        else:
            groups.append(line)
    return [g for g in groups if g.strip()]


def chunk_paper(paper: Paper, settings: ChunkSettings | None = None) -> list[Chunk]:
    """Cut one paper into chunks.

    >>> from rag.types import PaperSection
    >>> p = Paper(doc_id="x:1", title="T", sections=[PaperSection(text="One. Two.")])
    >>> [c.text for c in chunk_paper(p)]
    ['One. Two.']
    """
    settings = settings or ChunkSettings()
    enc = encoding(settings.encoding)
    pieces: list[tuple[str, _Unit]] = []  # (section title, packed unit)
    for section in paper.sections:
        if section.kind in SET_APART:
            continue
        units = _units(section, enc, settings.max_tokens)
        pieces.extend((section.title, unit) for unit in _pack(units, settings))
    digest = paper_hash(paper, settings)
    standing = paper.quality or Quality()  # every chunk carries it: a source list is built from chunks
    notice = standing.notice_line()
    chunks = []
    for i, (section_title, (text, n_tokens, first, last)) in enumerate(pieces):
        chunk_id = hashlib.sha256(f"{paper.doc_id}\x00{digest}\x00{i}\x00{text}".encode()).hexdigest()[:32]
        chunks.append(
            Chunk(
                chunk_id=chunk_id,
                doc_id=paper.doc_id,
                text=text,
                index=i,
                n_chunks=len(pieces),
                section=section_title,
                n_tokens=n_tokens,
                title=paper.title,
                year=paper.year,
                authors=paper.authors,
                doi=paper.doi,
                source=paper.source,
                paper_hash=digest,
                page_start=first,
                page_end=last,
                pub_types=standing.pub_types,
                cited_by=standing.cited_by,
                retracted=standing.retracted,
                notice=notice,
            )
        )
    return chunks


def _span(units: list[_Unit]) -> _Unit:
    pages = [p for u in units for p in u[2:] if p is not None]
    return (
        " ".join(u[0] for u in units),
        sum(u[1] for u in units),
        min(pages, default=None),
        max(pages, default=None),
    )


def _pack(units: list[_Unit], settings: ChunkSettings) -> list[_Unit]:
    chunks: list[_Unit] = []
    current: list[_Unit] = []
    size = 0
    fresh = 0  # units in `current` not already emitted in the previous chunk
    for unit in units:
        n = unit[1]
        if current and size + n > settings.max_tokens:
            chunks.append(_span(current))
            overlap: list[_Unit] = []
            kept = 0
            for u in reversed(current):
                if kept + u[1] > settings.overlap_tokens or kept + u[1] + n > settings.max_tokens:
                    break
                overlap.insert(0, u)
                kept += u[1]
            current, size, fresh = overlap, kept, 0
        current.append(unit)
        size += n
        fresh += 1
    if current and fresh:
        chunks.append(_span(current))
    return chunks
