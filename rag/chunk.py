"""Token-aware chunking: papers → :class:`~rag.types.Chunk` objects.

Sentences are packed into chunks of at most ``max_tokens`` tiktoken tokens, never crossing a
section; the last sentences of a chunk (up to ``overlap_tokens``) start the next one so that
a claim split across a boundary is still found whole. A sentence longer than a chunk is cut at
token boundaries.
"""

from __future__ import annotations

import hashlib
import json

from rag.lang.sentences import sentence_spans
from rag.settings import ChunkSettings
from rag.tokens import encoding
from rag.types import Chunk, Paper


def paper_hash(paper: Paper, settings: ChunkSettings) -> str:
    """Hash of everything that decides a paper's chunks: its content and the chunking settings."""
    payload = json.dumps(
        [
            paper.title,
            [s.model_dump() for s in paper.sections],
            paper.year,
            paper.authors,
            paper.doi,
            settings.model_dump(),
        ],
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def chunk_paper(paper: Paper, settings: ChunkSettings | None = None) -> list[Chunk]:
    """Cut one paper into chunks.

    >>> from rag.types import PaperSection
    >>> p = Paper(doc_id="x:1", title="T", sections=[PaperSection(text="One. Two.")])
    >>> [c.text for c in chunk_paper(p)]
    ['One. Two.']
    """
    settings = settings or ChunkSettings()
    enc = encoding(settings.encoding)
    pieces: list[tuple[str, str, int]] = []  # (section title, text, tokens)
    for section in paper.sections:
        sentences = []
        for a, b in sentence_spans(section.text):
            sentence = section.text[a:b]
            tokens = enc.encode(sentence, disallowed_special=())
            if len(tokens) <= settings.max_tokens:
                sentences.append((sentence, len(tokens)))
            else:  # a run-on "sentence" (tables, reference lists): cut at token boundaries
                for i in range(0, len(tokens), settings.max_tokens):
                    part = tokens[i : i + settings.max_tokens]
                    sentences.append((enc.decode(part).strip(), len(part)))
        pieces.extend((section.title, text, n) for text, n in _pack(sentences, settings))
    digest = paper_hash(paper, settings)
    chunks = []
    for i, (section_title, text, n_tokens) in enumerate(pieces):
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
            )
        )
    return chunks


def _pack(sentences: list[tuple[str, int]], settings: ChunkSettings) -> list[tuple[str, int]]:
    chunks: list[tuple[str, int]] = []
    current: list[tuple[str, int]] = []
    size = 0
    fresh = 0  # sentences in `current` not already emitted in the previous chunk
    for sentence, n in sentences:
        if current and size + n > settings.max_tokens:
            chunks.append((" ".join(s for s, _ in current), size))
            overlap: list[tuple[str, int]] = []
            kept = 0
            for s, k in reversed(current):
                if kept + k > settings.overlap_tokens or kept + k + n > settings.max_tokens:
                    break
                overlap.insert(0, (s, k))
                kept += k
            current, size, fresh = overlap, kept, 0
        current.append((sentence, n))
        size += n
        fresh += 1
    if current and fresh:
        chunks.append((" ".join(s for s, _ in current), size))
    return chunks
