"""`answer(question)`: retrieve → draft → check → consensus → render, the pipeline's front door.

A :class:`Pipeline` owns what is slow to load — retrievers (and their indexes), embedder caches,
an NLI model — for one store, bounded so a long-running server does not grow without end. The
module-level :func:`answer` / :func:`aanswer` keep a few pipelines, one per store and embedder.

>>> import rag
>>> a = rag.answer("Can vitamin D reverse osteoporosis?", collection="demo")   # doctest: +SKIP
>>> print(a.markdown)                                                          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from rag.check import Judge, LLMJudge, NLIJudge, OfflineJudge, OnQuestion, check, claims_to_check
from rag.consensus import ADJACENT, LLMStance, OfflineStance, conclusion_for
from rag.draft import ExtractiveDrafter, LLMDrafter
from rag.embed import CachedEmbedder, Embedder, LocalEmbedder
from rag.errors import ConfigError, InputError
from rag.estimate import Estimate, estimate
from rag.lang.lexicon import title_from_question
from rag.llm import Budget, ChatModel, make_chat
from rag.render import render_markdown, tail
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.store import Store
from rag.types import (
    Answer,
    Citation,
    Consensus,
    Draft,
    Evidence,
    Filters,
    FindReport,
    FindRequest,
    GroundingReport,
    Section,
    Sentence,
    Source,
    Usage,
)
from rag.verify import verify

K = TypeVar("K")
V = TypeVar("V")
_NEEDS_ENDPOINT = "needs an endpoint: set RAG_LLM_BASE_URL and RAG_LLM_MODEL."


class _Bounded(Generic[K, V]):
    """A small thread-safe LRU of things that are slow to build."""

    def __init__(self, size: int) -> None:
        self.size, self._items, self._lock = size, OrderedDict[K, V](), threading.Lock()

    def get(self, key: K, build: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            value = self._items[key] = build()
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return value


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
            raise InputError(key, "unknown override; it names no answer, retrieve, llm or check setting")
    return settings.model_copy(
        update={name: getattr(settings, name).model_copy(update=values) for name, values in updates.items()}
    )


def _mostly_unsupported(grounding: GroundingReport | None, below: float) -> bool:
    recall = grounding.citation_recall if grounding else None
    return recall is not None and recall < below


@dataclass
class _Checked:
    """A draft after its check: sections, sources, the receipt, the check's call (its cost and notes) and the
    stances that call read, if it was asked to (``asked_meter``)."""

    sections: list[Section] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    grounding: GroundingReport | None = None
    usage: Usage = field(default_factory=Usage)
    notes: list[str] = field(default_factory=list)
    read: Consensus | None = None
    asked_meter: bool = False


def _conclude(answer: Answer) -> None:
    """A Conclusion that says whether the cited papers test the question (the meter knows only now);
    the receipts follow a drafted Conclusion that moved."""
    if answer.consensus is None:
        return
    answer.sections = conclusion_for(answer.question, answer.consensus, answer.sections)
    moved = {s.text for sec in answer.sections if sec.title == ADJACENT for s in sec.sentences}
    if answer.grounding and moved:
        for v in answer.grounding.sentences:
            if v.section == "Conclusion" and v.sentence in moved:
                v.section = ADJACENT
        answer.grounding.changes.append(
            f"Moved the Conclusion's sentences that cite only papers not testing the question to {ADJACENT!r}; "
            "the Conclusion says which papers test it"
        )


def _no_answer(question: str, reason: str) -> list[Section]:
    text = f"The corpus does not contain evidence that answers “{question.strip()}”."
    return [
        Section(
            title="Introduction", sentences=[Sentence(text=text, kind="framing"), Sentence(text=reason, kind="framing")]
        )
    ]


def _citations(answer: Answer, grounding: GroundingReport, evidence: list[Evidence]) -> list[Citation]:
    """Each cited source with the quote it rests on, its section and pages, once per (source, chunk)."""
    chunks = {e.chunk.chunk_id: e.chunk for e in evidence}
    out, seen = [], set()
    for v in grounding.sentences:
        if v.best_source and v.chunk_id and (v.best_source, v.chunk_id) not in seen and v.action != "removed":
            seen.add((v.best_source, v.chunk_id))
            chunk = chunks.get(v.chunk_id)
            out.append(
                Citation(
                    number=v.best_source,
                    doc_id=answer.sources[v.best_source - 1].doc_id,
                    chunk_id=v.chunk_id,
                    quote=v.quote,
                    section=chunk.section if chunk else "",
                    page_start=chunk.page_start if chunk else None,
                    page_end=chunk.page_end if chunk else None,
                )
            )
    return out


class Pipeline:
    """Answers questions from the collections of one store (``settings.home`` or ``RAG_CHROMA_URL``).

    >>> pipeline = Pipeline(Settings())                          # doctest: +SKIP
    >>> pipeline.answer("Does aspirin prevent cancer?").title    # doctest: +SKIP
    'Does Aspirin Prevent Cancer?'
    """

    def __init__(self, settings: Settings | None = None, chat: ChatModel | None = None) -> None:
        self.settings = settings or Settings()
        self.chat = chat
        # A retriever holds its collection's BM25 index (~100 MB per million tokens): a few collections at once.
        self._retrievers: _Bounded[tuple[str, ...], Retriever] = _Bounded(8)
        # One cache per embedder (the collection's and the bundled one), each bounded in rows itself.
        self._embedders: _Bounded[str, CachedEmbedder] = _Bounded(4)
        self._nli: _Bounded[str, NLIJudge] = _Bounded(1)  # an NLI model is the largest thing here

    # -- what the pipeline owns -------------------------------------------------------------
    def retriever(self, settings: Settings, collection: str | None) -> Retriever:
        name = collection or settings.collection
        store = f"{settings.home}|{settings.chroma_url or ''}"
        key = (
            name,
            store,
            settings.retrieve.model_dump_json(),
            settings.embed.model_dump_json(),
            settings.llm.model_dump_json(),
        )
        return self._retrievers.get(key, lambda: Retriever(settings, collection=name))

    def cached(self, embedder: Embedder) -> CachedEmbedder:
        """One cache per embedder: the drafter and the checker embed the same evidence sentences."""
        return self._embedders.get(embedder.name, lambda: CachedEmbedder(embedder))

    def local(self, settings: Settings) -> CachedEmbedder:
        # The offline judge and stance model were calibrated with the bundled embedder, whatever the collection uses.
        embed = settings.embed.model_copy(update={"quantize": True, "batch_size": 1})
        return self.cached(LocalEmbedder(embed, settings.cache_dir))

    def judge(self, settings: Settings) -> Judge:
        if settings.check.judge != "nli":
            return OfflineJudge(self.local(settings), threshold=settings.check.threshold)
        path = settings.check.nli_path
        if path is None:
            raise ConfigError("check.judge='nli' needs RAG_CHECK__NLI_PATH (a folder with model.onnx, tokenizer.json).")
        return self._nli.get(str(path), lambda: NLIJudge(path, threshold=settings.check.threshold or 0.5))

    # -- the steps ----------------------------------------------------------------------------
    def _chat_for(self, settings: Settings, chat: ChatModel | None) -> ChatModel | None:
        chat = chat or self.chat or (make_chat(settings) if settings.answer.drafter in ("auto", "llm") else None)
        if chat is None:
            for wanted, what in (
                (settings.check.judge == "llm", "check.judge='llm'"),
                (settings.answer.consensus == "llm", "consensus='llm'"),
                (settings.answer.drafter == "llm", "drafter='llm'"),
            ):
                if wanted:
                    raise ConfigError(f"{what} {_NEEDS_ENDPOINT}")
        return chat

    async def _draft(
        self,
        question: str,
        evidence: list[Evidence],
        settings: Settings,
        chat: ChatModel | None,
        retriever: Retriever,
        on_token: Callable[[str], None] | None,
    ) -> Draft:
        best = max((e.dense_score or 0.0 for e in evidence), default=0.0)
        if not evidence or best < settings.answer.min_relevance:
            return Draft(
                title=question.strip(), drafter=chat.name if chat else ExtractiveDrafter.name, answerable=False
            )
        if chat is None:
            drafter = ExtractiveDrafter(self.cached(retriever.embedder), settings)
            return await asyncio.to_thread(drafter.draft_sync, question, evidence)
        # a re-ask for an ill-shaped draft may spend the call the check would have had
        reask = settings.llm.max_calls >= 2
        return await LLMDrafter(chat, settings, reask=reask).draft(question, evidence, on_token=on_token)

    async def _check(
        self, question: str, draft: Draft, evidence: list[Evidence], settings: Settings, chat: ChatModel | None
    ) -> _Checked:
        """The checked draft and its receipt; with an endpoint, one call judges the citations and reads the
        papers' stances together (the meter uses those later)."""
        judge = self.judge(settings)
        checked = _Checked()
        wants_judge = settings.check.judge in ("auto", "llm") and settings.check.mode != "off"
        claims = claims_to_check(draft.sections, draft.sources, evidence)
        if chat is not None and wants_judge and claims:
            llm_judge = LLMJudge(chat, judge)
            if settings.answer.consensus in ("auto", "llm"):
                verified = await verify(chat, question, draft.sections, list(draft.sources), evidence, llm_judge)
                checked.asked_meter, checked.read = True, verified.consensus
                judged, notes, call = verified.judged, verified.notes, verified.call
            else:
                call = await llm_judge.prepare(claims)
                judged, notes = not call.note, [call.note] if call.note else []
            checked.usage, checked.notes = call.usage, notes
            if judged:  # else the offline judge answers, and the receipt names it
                judge = llm_judge
        cut = settings.check.on_question
        on_question = OnQuestion(self.local(settings), cut) if cut is not None else None
        checked.sections, checked.sources, grounding = await asyncio.to_thread(
            check, draft.sections, list(draft.sources), evidence, judge, settings.check.mode, question, on_question
        )
        grounding.changes += checked.notes + draft.notes
        checked.grounding = grounding
        return checked

    async def _consensus(
        self, answer: Answer, evidence: list[Evidence], settings: Settings, chat: ChatModel | None, checked: _Checked
    ) -> Usage:
        """Fills ``answer.consensus``; returns what the meter's own call cost (none when the check's call read
        the stances)."""
        offline = OfflineStance(self.local(settings))
        # a retracted paper has no vote: it is listed, with its warning, but the meter leaves it out
        voters = [s for s in answer.sources if not s.retracted]
        notes = answer.grounding.changes if answer.grounding else []
        if len(voters) < len(answer.sources):
            notes.append(f"Left the retracted {', '.join(f'[{s.number}]' for s in answer.sources if s.retracted)} "
                         "out of the consensus meter")  # fmt: skip
        read, voting = checked.read, {s.number for s in voters}
        if read is not None and voting <= {p.number for p in read.papers}:
            kept = [p for p in read.papers if p.number in voting]
            answer.consensus = Consensus.from_papers(read.verdict, kept, method=read.method)
            return Usage()
        if read is not None:
            notes.append("The model read the stances of the papers it was given; papers cited after that were "
                         "not among them, so the offline meter weighed them all")  # fmt: skip
        if chat is None or settings.answer.consensus not in ("auto", "llm") or checked.asked_meter:
            answer.consensus = await asyncio.to_thread(offline.meter, answer.question, voters, evidence)
            return Usage()
        answer.consensus, call = await LLMStance(chat, offline).meter(answer.question, voters, evidence)
        if call.note:
            notes.append(call.note)
        return call.usage

    async def _find(
        self,
        question: str,
        find: FindRequest | FindReport | str | bool | None,
        collection: str | None,
        settings: Settings,
    ) -> FindReport | None:
        if isinstance(find, FindReport):  # already run (the CLI runs it with progress bars)
            return find
        if find is None or find is False:
            return None
        from rag.find.finder import Finder  # the connectors load only when a search is asked for

        request = find if isinstance(find, FindRequest) else FindRequest(query=question if find is True else find)
        if not request.query.strip() and not request.ids:  # a request naming only services: search the question
            request = request.model_copy(update={"query": question})
        return await asyncio.to_thread(Finder(Store(settings)).find, request, collection)

    # -- the front door -------------------------------------------------------------------
    async def aanswer(
        self,
        question: str,
        *,
        collection: str | None = None,
        settings: Settings | None = None,
        filters: Filters | None = None,
        chat: ChatModel | None = None,
        on_token: Callable[[str], None] | None = None,
        query: str | None = None,
        find: FindRequest | FindReport | str | bool | None = None,
        on_stage: Callable[[str], None] | None = None,
        **overrides: Any,
    ) -> Answer:
        """Answer ``question`` from a collection: a sectioned, cited :class:`Answer`.

        ``chat`` replaces the configured chat model (tests pass a scripted one); ``on_token`` receives
        the answer text as it is produced; ``query`` (default: the question) is what retrieval searches
        for, e.g. a follow-up question joined with the one before it. ``find`` first searches the
        literature services and stores what they find (``True``: for the question; a string: for that
        query; a :class:`~rag.types.FindRequest`; a :class:`~rag.types.FindReport`: a search already run);
        with no network the answer comes from the store as it is, and ``answer.found.note`` says so.
        ``on_stage`` is told what the pipeline is doing as each step starts ("Retrieving", "Drafting with
        llm:…", …), for a progress display. Other keyword arguments override settings by name.
        """
        if not question or not question.strip():
            raise InputError("question", "is empty")
        settings = apply_overrides(settings or self.settings, overrides)
        stage = on_stage or (lambda _: None)
        timings: dict[str, float] = {}
        started = t0 = time.perf_counter()
        # before the search and the retrieval: a dead endpoint, or a setting that needs one, fails at once
        chat = await asyncio.to_thread(self._chat_for, settings, chat)
        found = await self._find(question, find, collection, settings)
        if found:
            timings["find"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
        stage("Retrieving evidence")
        retriever = await asyncio.to_thread(self.retriever, settings, collection)
        evidence = await asyncio.to_thread(retriever.search, query or question, settings.answer.evidence_k, filters)
        evidence.sort(key=lambda e: e.chunk.retracted)  # stable: retracted papers last, the drafter's last resort
        timings["retrieve"] = round(time.perf_counter() - t0, 3)
        if chat is not None:  # one deadline and one count of calls for all of the answer's calls
            chat = Budget(chat, settings.llm.deadline_s, settings.llm.max_calls)
        t1 = time.perf_counter()
        stage(f"Drafting with {chat.name}" if chat else "Drafting")
        draft = await self._draft(question, evidence, settings, chat, retriever, on_token)
        timings["draft"] = round(time.perf_counter() - t1, 3)
        stage(f"Checking citations with {chat.name}" if chat else "Checking citations")
        answer = await self._finish(question, draft, evidence, settings, chat, timings)
        if chat is not None and _mostly_unsupported(answer.grounding, settings.answer.fallback_below):
            stage("The model's answer is mostly unsupported: drafting the extractive answer")
            answer = await self._extractive_instead(answer, evidence, settings, retriever, timings)
        answer.found = found
        answer.markdown = render_markdown(answer.title, answer.sections, answer)
        if on_token and (chat is None or answer.fallback):
            # the offline drafter produces its text at once; after a model's unsupported answer, say why it went
            on_token((f"\n\n---\n\n*{answer.fallback}.*\n\n" if answer.fallback else "") + answer.markdown)
        elif on_token and answer.answerable:
            on_token("\n\n" + "\n".join(tail(answer)).strip() + "\n")  # the model streamed the body only
        timings["total"] = round(time.perf_counter() - started, 3)
        answer.usage.seconds = timings
        return answer

    async def _finish(
        self,
        question: str,
        draft: Draft,
        evidence: list[Evidence],
        settings: Settings,
        chat: ChatModel | None,
        timings: dict[str, float],
    ) -> Answer:
        """Check the draft, build the answer, meter the consensus."""
        sections, sources, grounding, usage = draft.sections, draft.sources, None, draft.usage
        checked = _Checked()
        if draft.answerable and sections:
            t = time.perf_counter()
            checked = await self._check(question, draft, evidence, settings, chat)
            sections, sources, grounding = checked.sections, checked.sources, checked.grounding
            usage = usage.plus(checked.usage)
            timings["check"] = round(time.perf_counter() - t, 3)
        answerable = draft.answerable and bool(draft.sections)
        if not draft.answerable or not sections:
            best = max((e.dense_score or 0.0 for e in evidence), default=0.0)
            reason = (
                "No paper in the collection is close enough to the question to draw on."
                if best < settings.answer.min_relevance
                else "The retrieved papers do not address it directly."
            )
            sections = _no_answer(question, reason)
        title = draft.title if draft.answerable else title_from_question(question)
        answer = Answer(
            question=question, title=title, sections=sections, sources=sources if draft.answerable else [],
            grounding=grounding,
            drafter=draft.drafter, answerable=answerable, usage=usage, evidence=evidence,
        )  # fmt: skip
        if grounding:
            answer.citations = _citations(answer, grounding, evidence)
        if answer.answerable and answer.sources and settings.answer.consensus != "off":
            t = time.perf_counter()
            answer.usage = answer.usage.plus(await self._consensus(answer, evidence, settings, chat, checked))
            timings["consensus"] = round(time.perf_counter() - t, 3)
            _conclude(answer)
        return answer

    async def _extractive_instead(
        self, answer: Answer, evidence: list[Evidence], settings: Settings, retriever: Retriever,
        timings: dict[str, float],
    ) -> Answer:  # fmt: skip
        """The extractive answer, shown in place of a model's answer that its sources mostly do not support."""
        g = answer.grounding
        assert g is not None and g.citation_recall is not None  # as _mostly_unsupported found
        t = time.perf_counter()
        draft = await self._draft(answer.question, evidence, settings, None, retriever, None)
        instead = await self._finish(answer.question, draft, evidence, settings, None, timings)
        timings["fallback"] = round(time.perf_counter() - t, 3)
        instead.fallback = (
            f"The model's answer ({answer.drafter}) was mostly unsupported by its sources ({g.citation_recall:.0%} "
            f"of its claims supported, below RAG_ANSWER__FALLBACK_BELOW={settings.answer.fallback_below:g}): "
            "the extractive answer is shown instead"
        )
        if instead.grounding:
            instead.grounding.changes.insert(0, instead.fallback)
        instead.usage = instead.usage.plus(answer.usage)  # the model's calls were made, and count
        return instead

    def answer(self, question: str, **kwargs: Any) -> Answer:
        """Synchronous :meth:`aanswer` (safe to call from inside a running event loop too)."""
        return _run_sync(self.aanswer(question, **kwargs))

    def estimate(
        self,
        question: str,
        *,
        collection: str | None = None,
        settings: Settings | None = None,
        filters: Filters | None = None,
        **overrides: Any,
    ) -> Estimate:
        """What answering ``question`` would cost with the configured model: retrieval runs, the model is not
        called (see :mod:`rag.estimate`)."""
        if not question or not question.strip():
            raise InputError("question", "is empty")
        settings = apply_overrides(settings or self.settings, overrides)
        if not settings.llm.configured:
            raise ConfigError(f"--estimate {_NEEDS_ENDPOINT}")
        retriever = self.retriever(settings, collection)
        return estimate(question, retriever.search(question, settings.answer.evidence_k, filters), settings)


def _run_sync(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


_PIPELINES: _Bounded[tuple[str, ...], Pipeline] = _Bounded(4)  # stores one process answers from


def pipeline_for(settings: Settings) -> Pipeline:
    """The shared pipeline for a store and embedder (what is slow to load loads once per process)."""
    key = (str(settings.home), settings.chroma_url or "", str(settings.cache_dir), settings.embed.model_dump_json())
    return _PIPELINES.get(key, lambda: Pipeline(settings))


async def aanswer(question: str, *, settings: Settings | None = None, **kwargs: Any) -> Answer:
    """Answer ``question`` (see :meth:`Pipeline.aanswer` for the arguments)."""
    settings = settings or Settings()
    return await pipeline_for(settings).aanswer(question, settings=settings, **kwargs)


def answer(question: str, **kwargs: Any) -> Answer:
    """Synchronous :func:`aanswer` (safe to call from inside a running event loop too)."""
    return _run_sync(aanswer(question, **kwargs))
