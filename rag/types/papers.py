"""What reading, chunking, indexing and retrieval pass on: a paper, its chunks, reports of an ingest, filters,
and the embedder protocol every stage that embeds text is given."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, Field, StrictInt, StrictStr

Progress = Callable[[int], None]
"""Called with the number of items just processed."""
TokenVectors = tuple[list[str], np.ndarray]
"""A text's word pieces and their contextual vectors (one L2-normalised row each)."""


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors."""

    @property
    def name(self) -> str:
        """Identifies the model and its variant; stored with every collection."""
        ...

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """One float32 row per text."""
        ...


class TokenEmbedder(Embedder, Protocol):
    """An embedder that also gives each text's contextual token vectors (the offline judge's alignment)."""

    def embed_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        """Per text, its word pieces and one L2-normalised row per piece."""
        ...


class PaperSection(BaseModel):
    """A titled part of a paper's text (e.g. BACKGROUND, Methods)."""

    title: str = Field("", description="Section heading; empty when the paper has no headings.")
    text: str = Field(description="Section text.")
    kind: Literal["body", "caption", "table", "declaration", "keywords"] = Field(
        "body",
        description="`caption`: figure and table captions; `table`: table and figure text — both kept out of the "
        "running text, so they never split its sentences. `declaration` (acknowledgments, funding, competing "
        "interests, author contributions) and `keywords`: kept with the paper, never chunked, so never evidence.",
    )
    pages: list[tuple[int, int]] = Field(
        default_factory=list,
        description="Where pages begin in `text`: (character offset, 1-based page) pairs in order; empty when "
        "the input has no pages.",
    )

    def page_at(self, offset: int) -> int | None:
        """The page holding the character at ``offset`` (None without page information)."""
        page = None
        for start, number in self.pages:
            if start > offset:
                break
            page = number
        return page


class Reference(BaseModel):
    """One entry of a paper's reference list."""

    raw: str = Field(description="The entry as printed (normalised white space).")
    title: str | None = Field(None, description="The cited work's title, where recognisable.")
    year: int | None = Field(None, description="Its year, where recognisable.")
    doi: str | None = Field(None, description="Its DOI, where printed.")


class ReadingReport(BaseModel):
    """How well one document could be read: what a user checks before trusting answers from it."""

    source: str = Field(description="The file.")
    pages: int = Field(0, description="Pages in the file.")
    chars: int = Field(0, description="Characters of body text kept.")
    word_ratio: float | None = Field(None, description="Share of tokens that look like words (low: garbage text).")
    ocr_suspected: bool = Field(False, description="The text layer looks like bad OCR or garbage.")
    ocr_used: bool = Field(False, description="Text came from OCR (Tesseract) of page images.")
    sections: list[str] = Field(default_factory=list, description="Section headings found, in order.")
    references: int = Field(0, description="Reference-list entries split off the body.")
    removed_lines: int = Field(0, description="Page furniture (running headers, page numbers, stamps) removed.")
    warnings: list[str] = Field(default_factory=list, description="What a reader should know, in plain words.")


NoticeKind = Literal["retraction", "withdrawal", "expression_of_concern", "correction", "other"]


class Notice(BaseModel):
    """An editorial notice about a paper: a retraction, withdrawal, expression of concern or correction."""

    kind: NoticeKind = Field(
        description="What the notice does; `retraction` and `withdrawal` mean the paper must not be relied on."
    )
    label: str = Field("", description="The notice's own label, e.g. `Retraction`, `Correction`.")
    doi: str | None = Field(None, description="DOI of the notice itself.")
    date: str | None = Field(None, description="When it was issued (ISO date), where known.")
    source: str = Field("", description="Who reported it: `crossref`, `pubmed`, `openalex`, `europepmc`.")

    @property
    def retracts(self) -> bool:
        return self.kind in ("retraction", "withdrawal")


class Quality(BaseModel):
    """What a literature service says about a paper's standing: its design, citations and notices."""

    pub_types: list[str] = Field(
        default_factory=list, description="Publication types as the services give them (`Randomized Controlled Trial`)."
    )
    cited_by: int | None = Field(None, description="Citation count, where a service knows it.")
    retracted: bool = Field(False, description="A service flags the paper retracted or withdrawn.")
    notices: list[Notice] = Field(default_factory=list, description="Retraction, correction and similar notices.")
    journal: str | None = Field(None, description="Journal or venue.")
    open_access: bool | None = Field(None, description="Free to read, where a service says.")

    @property
    def empty(self) -> bool:
        return self == Quality()

    def notice_line(self) -> str:
        """The notices in one line for people: ``Retraction (10.1/x, 2023-05-01); Correction (10.1/y)``."""
        parts = []
        for n in self.notices:
            detail = ", ".join(x for x in (n.doi, n.date) if x)
            parts.append(f"{n.label or n.kind.replace('_', ' ').capitalize()}" + (f" ({detail})" if detail else ""))
        if self.retracted and not any(n.retracts for n in self.notices):
            parts.insert(0, "Retracted")
        return "; ".join(dict.fromkeys(parts))


class Paper(BaseModel):
    """One paper as read from an input file or record."""

    doc_id: str = Field(description="Stable identifier, e.g. `pubmed:123`, `s2orc:42` or `file:<name>-<hash>`.")
    title: str = Field("", description="Paper title; may be empty.")
    sections: list[PaperSection] = Field(description="The paper's text, in order.")
    year: int | None = Field(None, description="Publication year when known.")
    authors: list[str] = Field(default_factory=list, description="Author names when known.")
    doi: str | None = Field(None, description="DOI when known.")
    source: str = Field("", description="Where it was read from (`path` or `path:line`).")
    meta: dict[str, object] = Field(default_factory=dict, description="Other metadata from the record.")
    arxiv_id: str | None = Field(None, description="arXiv identifier printed in the paper, e.g. `2004.10706`.")
    references: list[Reference] = Field(
        default_factory=list, description="The reference list, split off the body: never embedded or searched."
    )
    report: ReadingReport | None = Field(None, description="How the document was read (PDFs).")
    quality: Quality | None = Field(None, description="Publication type, citations and notices (live search).")

    @property
    def text(self) -> str:
        """The whole text, sections joined by blank lines."""
        return "\n\n".join(s.text for s in self.sections)


class Chunk(BaseModel):
    """A token-bounded piece of one paper, the unit that is embedded and retrieved."""

    chunk_id: str = Field(description="Content hash: the same paper text always gives the same ids.")
    doc_id: str = Field(description="The paper it belongs to.")
    text: str = Field(description="The chunk's text.")
    index: int = Field(description="Position of the chunk within the paper (0-based).")
    n_chunks: int = Field(description="How many chunks the paper has.")
    section: str = Field("", description="Heading of the section the chunk starts in.")
    n_tokens: int = Field(description="Token count (tiktoken).")
    title: str = Field("", description="Paper title.")
    year: int | None = Field(None, description="Paper year.")
    authors: list[str] = Field(default_factory=list, description="Paper authors.")
    doi: str | None = Field(None, description="Paper DOI.")
    source: str = Field("", description="Input the paper came from.")
    paper_hash: str = Field(description="Hash of the whole paper; a changed paper gets new chunks.")
    page_start: int | None = Field(None, description="First page of the chunk (1-based), for inputs with pages.")
    page_end: int | None = Field(None, description="Last page of the chunk.")
    source_sha: str = Field(
        "", description="Digest of the input file and its reader: an unchanged file is not read again."
    )
    paper_info: str = Field(
        "", description="On a paper's first chunk: its reading report, references and arXiv id (JSON, `PaperInfo`)."
    )
    pub_types: list[str] = Field(default_factory=list, description="Paper publication types (live search).")
    cited_by: int | None = Field(None, description="Paper citation count, where known.")
    retracted: bool = Field(False, description="The paper is retracted or withdrawn.")
    notice: str = Field("", description="Its notices in one line, e.g. `Retraction (10.1/x, 2023-05-01)`.")


class PaperInfo(BaseModel):
    """What is stored once per paper, beside its chunks: how it was read and what it cites."""

    arxiv_id: str | None = None
    sections: list[str] = Field(default_factory=list, description="Section titles, in order.")
    references: list[Reference] = Field(default_factory=list)
    declarations: list[PaperSection] = Field(
        default_factory=list, description="Declarations and keyword lists: kept here, never searched."
    )
    report: ReadingReport | None = None


class InputFailure(BaseModel):
    """An input that could not be ingested, and why."""

    source: str = Field(description="The file, or `file:line` for one record.")
    error: str = Field(description="Error type, e.g. `CorruptFileError`.")
    reason: str = Field(description="What is wrong, in plain words.")


class IngestReport(BaseModel):
    """What an ingest run did."""

    collection: str = Field(description="Target collection.")
    files: int = Field(0, description="Files read.")
    papers_added: int = Field(0, description="Papers new to the collection.")
    papers_updated: int = Field(0, description="Papers whose content changed; their old chunks were replaced.")
    papers_unchanged: int = Field(0, description="Papers already stored with the same content (skipped).")
    chunks_added: int = Field(0, description="Chunks embedded and written.")
    chunks_removed: int = Field(0, description="Stale chunks of updated papers removed.")
    tokens_embedded: int = Field(0, description="Tokens (tiktoken) in the chunks embedded.")
    skipped: list[InputFailure] = Field(
        default_factory=list, description="Inputs passed over on purpose (e.g. duplicates)."
    )
    failed: list[InputFailure] = Field(default_factory=list, description="Inputs that could not be read, with reasons.")
    documents: list[ReadingReport] = Field(default_factory=list, description="How each PDF read (pages, warnings).")
    seconds: float = Field(0.0, description="Wall-clock time.")


class IngestProgress(BaseModel):
    """A progress event of an ingest: files read, or chunks embedded (with their tokens)."""

    stage: Literal["read", "embed"] = Field(description="`read`: files read; `embed`: chunks embedded and written.")
    done: int = Field(description="Files or chunks done so far.")
    total: int = Field(description="Files or chunks in all.")
    tokens_done: int = Field(0, description="Tokens of the chunks embedded in finished steps.")
    tokens_total: int = Field(0, description="Tokens of all the chunks to embed.")


class CollectionStats(BaseModel):
    """Size of one collection."""

    name: str = Field(description="Collection name.")
    papers: int = Field(description="Distinct papers.")
    chunks: int = Field(description="Chunks.")
    embedder: str = Field("", description="Embedder the collection was built with.")


class Filters(BaseModel):
    """Restrict retrieval to some papers."""

    # strict: a JSON `true` is not the year 1, nor `2015` the paper id "2015" (requests reach it as JSON)
    year_min: StrictInt | None = Field(
        None, description="Earliest publication year (inclusive); papers without a year are excluded."
    )
    year_max: StrictInt | None = Field(
        None, description="Latest publication year (inclusive); papers without a year are excluded."
    )
    doc_ids: list[StrictStr] | None = Field(
        None, description="Only these papers; one the collection lacks is an input error."
    )

    @property
    def empty(self) -> bool:
        return self.year_min is None and self.year_max is None and not self.doc_ids

    def admits(self, doc_id: str, year: int | None) -> bool:
        """Whether a chunk of paper ``doc_id`` published in ``year`` is inside these filters (as Chroma's
        ``where`` from :func:`rag.retrieve.chroma_where` decides it)."""
        if self.empty:
            return True
        if self.doc_ids is not None and doc_id not in self.doc_ids:
            return False
        if self.year_min is None and self.year_max is None:
            return True
        if year is None:
            return False
        return (self.year_min is None or year >= self.year_min) and (self.year_max is None or year <= self.year_max)
