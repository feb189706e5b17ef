"""`answer(question)`: retrieve → draft → check → consensus → render, the pipeline's front door.

>>> import rag
>>> a = rag.answer("Can vitamin D reverse osteoporosis?", collection="demo")   # doctest: +SKIP
>>> print(a.markdown)                                                          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from rag.check import Judge, LLMJudge, NLIJudge, OfflineJudge, check, claims_to_check
from rag.consensus import LLMStance, OfflineStance
from rag.draft import Draft, ExtractiveDrafter, LLMDrafter, StreamRenumber, title_from_question
from rag.embed import CachedEmbedder, Embedder, LocalEmbedder
from rag.errors import ConfigError
from rag.llm import ChatModel, make_chat
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.types import Answer, Citation, Filters, Section, Sentence, Usage

_RETRIEVERS: dict[tuple[str, str], Retriever] = {}
_EMBEDDERS: dict[str, CachedEmbedder] = {}
_LOCK = threading.Lock()


def _shared(embedder: Embedder) -> CachedEmbedder:
    # One cache per embedder: the drafter and the checker embed the same evidence sentences.
    with _LOCK:
        if embedder.name not in _EMBEDDERS:
            _EMBEDDERS[embedder.name] = CachedEmbedder(embedder)
        return _EMBEDDERS[embedder.name]


_NLI: dict[str, NLIJudge] = {}


def _local(settings: Settings) -> CachedEmbedder:
    # The offline judge and stance model were calibrated with the bundled embedder, whatever the collection uses.
    return _shared(LocalEmbedder(settings.embed.model_copy(update={"quantize": True, "batch_size": 1})))


def _judge(settings: Settings) -> Judge:
    if settings.check.judge == "nli":
        if settings.check.nli_path is None:
            raise ConfigError("check.judge='nli' needs RAG_CHECK__NLI_PATH (a folder with model.onnx, tokenizer.json).")
        key = str(settings.check.nli_path)
        with _LOCK:
            if key not in _NLI:
                _NLI[key] = NLIJudge(settings.check.nli_path, threshold=settings.check.threshold or 0.5)
            return _NLI[key]
    return OfflineJudge(_local(settings), threshold=settings.check.threshold)


def _retriever(settings: Settings, collection: str | None) -> Retriever:
    # Models and indexes load once per process and settings, not once per question.
    key = (settings.model_dump_json(), collection or settings.collection)
    with _LOCK:
        if key not in _RETRIEVERS:
            _RETRIEVERS[key] = Retriever(settings, collection=collection)
        return _RETRIEVERS[key]


def apply_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """Per-call overrides by field name, e.g. ``drafter="extractive"``, ``k=8``, ``model="gpt-4o"``."""
    if not overrides:
        return settings
    updates: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        for section in ("answer", "retrieve", "llm", "check"):
            if key in type(getattr(settings, section)).model_fields:
                updates.setdefault(section, {})[key] = value
                break
        else:
            raise ConfigError(f"Unknown override {key!r}.")
    return settings.model_copy(
        update={name: getattr(settings, name).model_copy(update=values) for name, values in updates.items()}
    )


def render_markdown(title: str, sections: list[Section], answer: Answer) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        if section.title != "Introduction":
            lines += ["#" * section.level + " " + section.title, ""]
        lines += [" ".join(s.text + (" *(unverified)*" if s.flagged else "") for s in section.sentences), ""]
    lines += _tail(answer)
    return "\n".join(lines).strip() + "\n"


_VERDICT_WORDS = {"yes": "Yes", "possibly": "Possibly", "no": "No", "unclear": "Unclear"}


def _tail(answer: Answer) -> list[str]:
    """The consensus line and the numbered source list that close an answer."""
    lines: list[str] = []
    c = answer.consensus
    if c and c.papers:
        lines += [
            f"**Consensus meter: {_VERDICT_WORDS[c.verdict]}** — of {len(c.papers)} cited papers, {c.supports} support, "
            f"{c.contradicts} contradict, {c.neutral} neutral ({c.method}).",
            "",
        ]
    if answer.sources:
        lines += ["## Sources", ""]
        for s in answer.sources:
            authors = ", ".join(s.authors[:3]) + (" et al." if len(s.authors) > 3 else "")
            bits = [b for b in (authors, f"({s.year})" if s.year else "", s.title or "(untitled)") if b]
            tail = f" · doi:{s.doi}" if s.doi else ""
            lines.append(f"{s.number}. {' '.join(bits)} — `{s.doc_id}`{tail}")
        lines.append("")
    return lines


def _no_answer(question: str, title: str, reason: str) -> list[Section]:
    return [
        Section(
            title="Introduction",
            sentences=[
                Sentence(
                    text=f"The corpus does not contain evidence that answers “{question.strip()}”.", kind="framing"
                ),
                Sentence(text=reason, kind="framing"),
            ],
        )
    ]


async def aanswer(
    question: str,
    *,
    collection: str | None = None,
    settings: Settings | None = None,
    filters: Filters | None = None,
    chat: ChatModel | None = None,
    on_token: Callable[[str], None] | None = None,
    query: str | None = None,
    **overrides: Any,
) -> Answer:
    """Answer ``question`` from a collection: a sectioned, cited :class:`Answer`.

    ``chat`` replaces the configured chat model (tests pass a scripted one); ``on_token`` receives
    the answer text as it is produced; ``query`` (default: the question) is what retrieval searches
    for, e.g. a follow-up question joined with the one before it. Other keyword arguments override
    settings by name.
    """
    if not question or not question.strip():
        raise ConfigError("The question is empty.")
    settings = apply_overrides(settings or Settings(), overrides)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    retriever = await asyncio.to_thread(_retriever, settings, collection)
    evidence = await asyncio.to_thread(retriever.search, query or question, settings.answer.evidence_k, filters)
    timings["retrieve"] = round(time.perf_counter() - t0, 3)

    mode = settings.answer.drafter
    chat = chat or (make_chat(settings) if mode in ("auto", "llm") else None)
    if settings.answer.consensus == "llm" and chat is None:
        raise ConfigError("consensus='llm' needs an endpoint: set RAG_LLM_BASE_URL and RAG_LLM_MODEL.")
    if mode == "llm" and chat is None:
        raise ConfigError("drafter='llm' needs an endpoint: set RAG_LLM_BASE_URL and RAG_LLM_MODEL.")
    best = max((e.dense_score or 0.0 for e in evidence), default=0.0)
    t1 = time.perf_counter()
    if not evidence or best < settings.answer.min_relevance:
        draft = Draft(
            title=question.strip(),
            sections=[],
            sources=[],
            drafter=chat.name if chat else ExtractiveDrafter.name,
            answerable=False,
        )
    elif chat is not None:
        renumber = StreamRenumber(evidence, on_token) if on_token else None
        draft = await LLMDrafter(chat, settings).draft(question, evidence, on_token=renumber.feed if renumber else None)
        if renumber:
            renumber.flush()
    else:
        drafter = ExtractiveDrafter(_shared(retriever.embedder), settings)
        draft = await asyncio.to_thread(drafter.draft_sync, question, evidence)
    timings["draft"] = round(time.perf_counter() - t1, 3)

    title = draft.title if draft.answerable else title_from_question(question)
    sections, sources = draft.sections, draft.sources
    grounding = None
    if draft.answerable and sections:
        t2 = time.perf_counter()
        judge: Judge = _judge(settings)
        llm_judge = None
        if settings.check.judge == "llm" and chat is None:
            raise ConfigError("check.judge='llm' needs an endpoint: set RAG_LLM_BASE_URL and RAG_LLM_MODEL.")
        if chat is not None and settings.check.judge in ("auto", "llm") and settings.check.mode != "off":
            llm_judge = LLMJudge(chat, judge)
            await llm_judge.prepare(claims_to_check(sections, sources, evidence))
            judge = llm_judge
        sections, sources, grounding = await asyncio.to_thread(
            check, sections, list(sources), evidence, judge, settings.check.mode
        )
        if llm_judge and llm_judge.completion:
            draft.usage.llm_calls += 1
            draft.usage.prompt_tokens += llm_judge.completion.prompt_tokens
            draft.usage.completion_tokens += llm_judge.completion.completion_tokens
        if llm_judge and llm_judge.error:
            grounding.changes.append(llm_judge.error)
        if draft.invalid_keys:
            grounding.changes.append(
                f"Dropped citations to sources that were not given: {', '.join(draft.invalid_keys)}"
            )
        timings["check"] = round(time.perf_counter() - t2, 3)
    if not draft.answerable or not sections:
        reason = (
            "No paper in the collection is close enough to the question to draw on."
            if best < settings.answer.min_relevance
            else "The retrieved papers do not address it directly."
        )
        sections = _no_answer(question, title, reason)
    answer = Answer(
        question=question,
        title=title,
        sections=sections,
        sources=sources if draft.answerable else [],
        grounding=grounding,
        drafter=draft.drafter,
        answerable=draft.answerable and bool(draft.sections),
        usage=Usage(
            llm_calls=draft.usage.llm_calls,
            prompt_tokens=draft.usage.prompt_tokens,
            completion_tokens=draft.usage.completion_tokens,
            seconds=timings,
        ),
        evidence=evidence,
    )
    if grounding:
        seen: set[tuple[int, str]] = set()
        for v in grounding.sentences:
            if v.best_source and v.chunk_id and (v.best_source, v.chunk_id) not in seen and v.action != "removed":
                seen.add((v.best_source, v.chunk_id))
                doc_id = answer.sources[v.best_source - 1].doc_id
                answer.citations.append(
                    Citation(number=v.best_source, doc_id=doc_id, chunk_id=v.chunk_id, quote=v.quote)
                )
    if answer.answerable and answer.sources and settings.answer.consensus != "off":
        t3 = time.perf_counter()
        offline = OfflineStance(_local(settings))
        if chat is not None and settings.answer.consensus in ("auto", "llm"):
            meter = LLMStance(chat, offline)
            answer.consensus = await meter.meter(question, answer.sources, evidence)
            if meter.completion:
                answer.usage.llm_calls += 1
                answer.usage.prompt_tokens += meter.completion.prompt_tokens
                answer.usage.completion_tokens += meter.completion.completion_tokens
            if meter.error and grounding:
                grounding.changes.append(meter.error)
        else:
            answer.consensus = await asyncio.to_thread(offline.meter, question, answer.sources, evidence)
        timings["consensus"] = round(time.perf_counter() - t3, 3)
    answer.markdown = render_markdown(title, sections, answer)
    if on_token and chat is None:
        on_token(answer.markdown)  # the offline drafter produces its text at once
    elif on_token and answer.answerable:
        on_token("\n\n" + "\n".join(_tail(answer)).strip() + "\n")  # the model streamed the body only
    timings["total"] = round(time.perf_counter() - t0, 3)
    answer.usage.seconds = timings  # pydantic copied the dict when the answer was built
    return answer


def answer(question: str, **kwargs: Any) -> Answer:
    """Synchronous :func:`aanswer` (safe to call from inside a running event loop too)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(aanswer(question, **kwargs))
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = asyncio.run(aanswer(question, **kwargs))
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]
