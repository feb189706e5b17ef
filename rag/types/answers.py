"""What drafting, checking and answering pass on: evidence, the answer's sections and sources, the grounding
receipt, the consensus meter, and what the model calls cost."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from rag.types.find import FindReport
from rag.types.papers import Chunk


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
        description="`supported`, `partial`, `unsupported`, `uncited`, `invalid_citation`, `no_claim`, "
        "`boilerplate` (page furniture or packaging) or `off_question` (supported or not, not on the question)."
    )
    on_question: float | None = Field(
        None, description="Closeness of a claim to the question (cosine; below `check.on_question` it is set aside)."
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
    off_question_rate: float | None = Field(
        None, description="Share of claim sentences set aside as boilerplate or off the question."
    )
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
    tests: bool | None = Field(
        None,
        description="Offline meter: whether the paper tests what the question asks (its exposure and outcome "
        "together); only those vote. False: it addresses something adjacent. None: not judged (LLM meter).",
    )
    sentence: str = Field("", description="The paper's sentence that shows its stance.")
    chunk_id: str = Field("", description="Chunk holding that sentence.")


class Consensus(BaseModel):
    """The consensus meter: per cited paper stance and the overall verdict with the counts behind it."""

    verdict: Literal["yes", "possibly", "no", "unclear"] = Field(
        description="`yes`, `possibly` (leaning yes, with dissent or weak evidence), `no` or `unclear`."
    )
    supports: int = Field(0, description="Cited papers that support (of those that test the question).")
    contradicts: int = Field(0, description="Cited papers that contradict (of those that test the question).")
    neutral: int = Field(0, description="Cited papers that neither support nor contradict (of those testing it).")
    testing: int | None = Field(
        None, description="Cited papers that test what the question asks (the voters); None when not judged."
    )
    papers: list[PaperStance] = Field(default_factory=list, description="Stance of each cited paper.")
    scores: dict[str, float] = Field(
        default_factory=dict, description="Offline meter: relevance-weighted stance mass behind the verdict."
    )
    method: str = Field("", description="`offline-v2` or `llm:<model>`.")
    summary: str = Field(
        "", description='The counts behind the verdict in words: "3 of 6 cited papers test this: 2 support, …".'
    )

    @classmethod
    def from_papers(
        cls, verdict: str, papers: list[PaperStance], method: str, scores: dict[str, float] | None = None
    ) -> Consensus:
        judged = any(p.tests is not None for p in papers)
        voters = [p for p in papers if p.tests is not False]
        counts = {s: sum(p.stance == s for p in voters) for s in ("supports", "contradicts", "neutral")}
        tally = f"{counts['supports']} support, {counts['contradicts']} contradict, {counts['neutral']} neutral"
        if not judged:
            summary = f"of {len(papers)} cited papers, {tally}"
        elif not voters:
            summary = (
                "the one cited paper does not test this directly"
                if len(papers) == 1
                else f"none of the {len(papers)} cited papers tests this directly"
            )
        else:
            verb = "tests" if len(voters) == 1 else "test"
            summary = f"{len(voters)} of {len(papers)} cited papers {verb} this: {tally}"
        return cls(
            verdict=verdict,  # type: ignore[arg-type]
            papers=papers,
            method=method,
            scores=scores or {},
            summary=summary,
            testing=len(voters) if judged else None,
            **counts,
        )


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
