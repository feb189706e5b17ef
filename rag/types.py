"""What crosses stage boundaries: pydantic models (read → chunk → store → retrieve → draft → check →
answer) and the embedder protocol every stage that embeds text is given."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

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
    kind: Literal["body", "caption", "table"] = Field(
        "body",
        description="`caption`: figure and table captions; `table`: table and figure text — both kept out of the "
        "running text, so they never split its sentences.",
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


class FindRequest(BaseModel):
    """What to look for in the literature services (`rag find`, `answer(find=...)`)."""

    model_config = ConfigDict(strict=True)  # a request body's `"full_text": 0` is a mistake, not `false`

    query: str = Field("", description="Search words; may be empty when `ids` are given.")
    ids: list[str] = Field(
        default_factory=list, description="Identifiers to fetch: `pmid:…`, `pmcid:PMC…`, `doi:…`, `arxiv:…`."
    )
    sources: list[str] | None = Field(None, description="Services to ask; unset: `find.sources` of the settings.")
    max_results: int | None = Field(None, ge=1, le=500, description="Records per service; unset: the settings'.")
    since: int | None = Field(None, ge=1000, le=3000, description="Only papers published in this year or later.")
    full_text: bool = Field(False, description="Also fetch open-access full text (Europe PMC JATS, arXiv PDF).")


class SourceTally(BaseModel):
    """What one service gave."""

    source: str = Field(description="The service.")
    found: int = Field(0, description="Records it returned.")
    requests: int = Field(0, description="Requests sent over the network (retries included).")
    cached: int = Field(0, description="Responses served from the on-disk cache.")
    seconds: float = Field(0.0, description="Wall-clock time.")
    error: str | None = Field(None, description="Why it gave nothing, when it failed.")
    unavailable: bool = Field(False, description="It could not be reached (no network, refused, overloaded).")


class FindReport(BaseModel):
    """What a literature search found and stored."""

    query: str = Field("", description="The query (or the identifiers) searched for.")
    collection: str = Field("", description="Where the papers went.")
    sources: list[SourceTally] = Field(default_factory=list, description="Per service: found, requests, errors.")
    records: int = Field(0, description="Records returned by all services together.")
    papers: int = Field(0, description="Distinct papers among them (one paper found twice counts once).")
    duplicates: int = Field(0, description="Records that were a paper another service had already returned.")
    new: int = Field(0, description="Papers new to the collection.")
    already_stored: int = Field(0, description="Papers the collection already held unchanged.")
    updated: int = Field(0, description="Stored papers whose record changed (e.g. newly retracted), stored anew.")
    no_text: list[str] = Field(
        default_factory=list, description="Papers with neither abstract nor full text (not stored)."
    )
    full_texts: int = Field(0, description="Papers stored with their full text.")
    retracted: list[str] = Field(default_factory=list, description="Papers flagged retracted or withdrawn.")
    doc_ids: list[str] = Field(default_factory=list, description="Every paper found, as stored.")
    failed: list[InputFailure] = Field(default_factory=list, description="What could not be fetched or stored.")
    offline: bool = Field(False, description="No service could be reached: nothing was searched.")
    note: str = Field("", description="One line for people: what happened.")
    seconds: float = Field(0.0, description="Wall-clock time.")


class FindProgress(BaseModel):
    """A progress event of a search: a service answered, or notices / full texts fetched."""

    stage: Literal["search", "notices", "full_text"] = Field(description="What is under way.")
    source: str = Field("", description="The service, for `search`.")
    done: int = Field(description="Steps done.")
    total: int = Field(description="Steps in all.")
    detail: str = Field("", description="E.g. `12 found` or `unreachable`.")


class CollectionStats(BaseModel):
    """Size of one collection."""

    name: str = Field(description="Collection name.")
    papers: int = Field(description="Distinct papers.")
    chunks: int = Field(description="Chunks.")
    embedder: str = Field("", description="Embedder the collection was built with.")


class Filters(BaseModel):
    """Restrict retrieval to some papers."""

    year_min: int | None = Field(
        None, description="Earliest publication year (inclusive); papers without a year are excluded."
    )
    year_max: int | None = Field(
        None, description="Latest publication year (inclusive); papers without a year are excluded."
    )
    doc_ids: list[str] | None = Field(None, description="Only these papers.")

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


class Evidence(BaseModel):
    """A retrieved chunk with the scores that ranked it."""

    chunk: Chunk = Field(description="The retrieved chunk (with its paper's metadata).")
    score: float = Field(description="Final (fused) score; higher is better.")
    rank: int = Field(description="1-based rank in the result list.")
    dense_score: float | None = Field(
        None, description="Cosine similarity from the dense retriever, if it found the chunk."
    )
    bm25_score: float | None = Field(None, description="BM25 score, if the lexical retriever found the chunk.")
    dense_rank: int | None = Field(None, description="1-based rank in the dense list.")
    bm25_rank: int | None = Field(None, description="1-based rank in the BM25 list.")


class Source(BaseModel):
    """A paper cited in an answer, numbered by first citation."""

    number: int = Field(description="The `[n]` used in the answer text.")
    doc_id: str = Field(description="Paper identifier.")
    title: str = Field("", description="Paper title.")
    year: int | None = Field(None, description="Publication year.")
    authors: list[str] = Field(default_factory=list, description="Authors.")
    doi: str | None = Field(None, description="DOI.")
    chunk_ids: list[str] = Field(default_factory=list, description="The evidence chunks of this paper that were cited.")
    pub_types: list[str] = Field(default_factory=list, description="Publication types, where a service gave them.")
    design: str | None = Field(None, description="The strongest study design they name: `RCT`, `Meta-analysis` …")
    cited_by: int | None = Field(None, description="Citation count, where known.")
    retracted: bool = Field(False, description="Retracted or withdrawn: it supports nothing without a warning.")
    notice: str = Field("", description="Its retraction or correction notices, in one line.")


class Citation(BaseModel):
    """One `[n]` in the answer, tied to the evidence it points at."""

    number: int = Field(description="Source number.")
    doc_id: str = Field(description="Cited paper.")
    chunk_id: str = Field(description="Cited evidence chunk.")
    quote: str = Field("", description="The source sentence or passage the citation rests on, when known.")
    section: str = Field("", description="Section of the paper the cited chunk is from.")
    page_start: int | None = Field(None, description="First page of the cited chunk (PDFs).")
    page_end: int | None = Field(None, description="Last page of the cited chunk.")


class Sentence(BaseModel):
    """A sentence of the answer with its citations."""

    text: str = Field(description="Sentence text, with its `[n]` markers.")
    citations: list[int] = Field(default_factory=list, description="Source numbers cited by the sentence.")
    kind: str = Field("claim", description="`claim` (needs support) or `framing` (our own connective text).")
    flagged: bool = Field(False, description="The checker could not verify it (kept in `flag` mode).")
    warning: str = Field("", description="What a reader must know, e.g. that it cites a retracted paper.")


class Section(BaseModel):
    """A titled part of the answer."""

    title: str = Field(description="Section heading.")
    level: int = Field(2, description="Markdown heading level: 2 for `##`, 3 for `###`.")
    sentences: list[Sentence] = Field(default_factory=list, description="The section's sentences, in order.")

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


class SentenceVerdict(BaseModel):
    """The grounding checker's verdict on one sentence."""

    section: str = Field(description="Section the sentence is in.")
    sentence: str = Field(description="The sentence as checked.")
    citations: list[int] = Field(default_factory=list, description="Source numbers it cites.")
    verdict: str = Field(
        description="`supported`, `partial`, `unsupported`, `uncited`, `invalid_citation` or `no_claim`."
    )
    score: float = Field(0.0, description="Support score from the judge (0-1).")
    best_source: int | None = Field(None, description="Source number whose text supports it best.")
    quote: str = Field("", description="Best supporting quote from the cited evidence.")
    quote_span: tuple[int, int] | None = Field(None, description="Character span of the quote in its chunk.")
    chunk_id: str | None = Field(None, description="Chunk holding the quote.")
    page_start: int | None = Field(None, description="First page of the chunk holding the quote (PDFs).")
    page_end: int | None = Field(None, description="Last page of that chunk.")
    action: str = Field(
        "kept",
        description="What repair did: `kept`, `recited`, `cited` (an uncited claim cited after "
        "the fact), `rewritten`, `removed`, `flagged`.",
    )
    warning: str = Field("", description="E.g. `cites retracted [3]`: a retracted paper supports nothing.")


class GroundingReport(BaseModel):
    """How well the answer's citations are supported (ALCE-style) and what was repaired."""

    judge: str = Field("", description="Judge that produced the verdicts.")
    mode: str = Field("flag", description="Repair mode: `strict`, `flag` or `off`.")
    citation_recall: float | None = Field(
        None, description="Share of claim sentences fully supported by their citations."
    )
    citation_precision: float | None = Field(
        None, description="Share of citations that are relevant to their sentence."
    )
    uncited_rate: float | None = Field(
        None, description="Share of claim sentences without any citation, after citing what the evidence supports."
    )
    uncited_drafted_rate: float | None = Field(
        None, description="Share of claim sentences the drafter left without any citation (before that repair)."
    )
    invalid_citation_rate: float | None = Field(None, description="Share of citations pointing at no source.")
    sentences: list[SentenceVerdict] = Field(default_factory=list, description="Per-sentence receipt.")
    changes: list[str] = Field(default_factory=list, description="Human-readable list of repairs made.")


class PaperStance(BaseModel):
    """Where one cited paper stands on the question."""

    number: int = Field(description="The paper's source number `[n]` in the answer.")
    doc_id: str = Field(description="Paper identifier.")
    title: str = Field("", description="Paper title.")
    stance: Literal["supports", "contradicts", "neutral"] = Field(
        description="`supports` (its findings say yes / back the claim), `contradicts` (say no) or `neutral`."
    )
    confidence: float | None = Field(None, description="Offline meter: probability of the stance (0-1).")
    relevance: float | None = Field(
        None, description="Offline meter: similarity of the paper's closest sentence to the question (it weighs more)."
    )
    sentence: str = Field("", description="The paper's sentence that shows its stance.")
    chunk_id: str = Field("", description="Chunk holding that sentence.")


class Consensus(BaseModel):
    """The consensus meter: per cited paper stance and the overall verdict with the counts behind it."""

    verdict: Literal["yes", "possibly", "no", "unclear"] = Field(
        description="`yes`, `possibly` (leaning yes, with dissent or weak evidence), `no` or `unclear`."
    )
    supports: int = Field(0, description="Cited papers that support.")
    contradicts: int = Field(0, description="Cited papers that contradict.")
    neutral: int = Field(0, description="Cited papers that neither support nor contradict.")
    papers: list[PaperStance] = Field(default_factory=list, description="Stance of each cited paper.")
    scores: dict[str, float] = Field(
        default_factory=dict, description="Offline meter: relevance-weighted stance mass behind the verdict."
    )
    method: str = Field("", description="`offline-v1` or `llm:<model>`.")
    summary: str = Field("", description="One line: the verdict and the counts, for people.")

    @classmethod
    def from_papers(
        cls, verdict: str, papers: list[PaperStance], method: str, scores: dict[str, float] | None = None
    ) -> Consensus:
        counts = {s: sum(p.stance == s for p in papers) for s in ("supports", "contradicts", "neutral")}
        summary = (
            f"{verdict.capitalize()}: {counts['supports']} of {len(papers)} cited papers support, "
            f"{counts['contradicts']} contradict, {counts['neutral']} neutral."
        )
        return cls(verdict=verdict, papers=papers, method=method, scores=scores or {}, summary=summary, **counts)  # type: ignore[arg-type]


class Usage(BaseModel):
    """What an answer cost."""

    llm_calls: int = Field(0, description="Chat-model calls made.")
    prompt_tokens: int = Field(0, description="Prompt tokens (tiktoken count when the endpoint reports none).")
    completion_tokens: int = Field(0, description="Completion tokens.")
    seconds: dict[str, float] = Field(default_factory=dict, description="Wall-clock seconds per stage.")

    def plus(self, other: Usage) -> Usage:
        """Calls and tokens of both (the seconds stay this one's)."""
        return self.model_copy(
            update={
                "llm_calls": self.llm_calls + other.llm_calls,
                "prompt_tokens": self.prompt_tokens + other.prompt_tokens,
                "completion_tokens": self.completion_tokens + other.completion_tokens,
            }
        )


class Draft(BaseModel):
    """A drafter's output, before checking and rendering."""

    title: str = Field(description="Answer title.")
    sections: list[Section] = Field(default_factory=list, description="The drafted sections, citations as `[n]`.")
    sources: list[Source] = Field(default_factory=list, description="Cited papers, numbered by first citation.")
    drafter: str = Field(description="`extractive` or `llm:<model>`.")
    usage: Usage = Field(default_factory=Usage, description="Model calls and tokens the draft cost.")
    answerable: bool = Field(True, description="False when the drafter found nothing to answer with.")
    invalid_keys: list[str] = Field(default_factory=list, description="Source keys the model cited but was not given.")
    notes: list[str] = Field(default_factory=list, description="What the drafter changed, for `grounding.changes`.")


class LLMCall(BaseModel):
    """What one auxiliary model call (judge, meter) cost, and why its reply was not used, if it was not."""

    usage: Usage = Field(default_factory=Usage, description="Calls and tokens; zero when no call was made.")
    note: str | None = Field(None, description="Why the offline fallback was used instead, for `grounding.changes`.")


class Answer(BaseModel):
    """A sectioned, cited answer to one question."""

    question: str = Field(description="The question asked.")
    title: str = Field(description="Answer title.")
    sections: list[Section] = Field(
        default_factory=list, description="Introduction, body sections, limitations, conclusion."
    )
    sources: list[Source] = Field(default_factory=list, description="Cited papers, numbered by first citation.")
    markdown: str = Field("", description="The whole answer rendered as Markdown, with a numbered source list.")
    citations: list[Citation] = Field(default_factory=list, description="Each cited source with the quote it rests on.")
    grounding: GroundingReport | None = Field(None, description="Citation-grounding receipt.")
    consensus: Consensus | None = Field(None, description="Consensus meter over the cited papers.")
    drafter: str = Field("", description="Which drafter wrote it: `extractive` or `llm:<model>`.")
    fallback: str = Field(
        "", description="Why the model's answer was replaced by the extractive one (empty: it was not)."
    )
    answerable: bool = Field(True, description="False when the corpus holds no evidence for the question.")
    usage: Usage = Field(default_factory=Usage, description="LLM calls, tokens and seconds per stage.")
    evidence: list[Evidence] = Field(default_factory=list, description="The evidence the drafter saw.")
    found: FindReport | None = Field(None, description="The literature search run first (`find=`), if any.")
