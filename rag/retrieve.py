"""Hybrid retrieval: dense search in Chroma plus BM25 over the same chunks, fused.

Chroma's sparse/Search API exists only in its cloud, so the lexical side is a tantivy index kept
beside the store (:mod:`rag.lexical`, ``RAG_HOME/indexes/…``): updated in place by every ingest and
deletion, and brought level with Chroma by chunk-id difference when another writer changed the
collection without it (a Chroma server written from another host).

Fusion is per chunk: each list's scores are min-max normalised and mixed with a weight (or
reciprocal rank fusion); papers are then ranked by their best chunk, and at most ``per_paper``
chunks of one paper are kept so the evidence spans papers (when the other papers cannot fill the list, a
question asked of one paper or a few, their further chunks fill it). Before the dense search the query's vector
goes through the linear map fitted for its form (claim or question; ``rag/query_adapter_v1.json``,
``python -m evals.fit_adapter``): the stored chunk vectors stay as they are.

Filters stay off Chroma's filtered search where they can (it filters rows in SQLite first: seconds
at 1M chunks): a year filter filters a wider unfiltered search, a filter to a few papers compares
the query with their chunks' own vectors; both give what Chroma's filter gives.
"""

from __future__ import annotations

import asyncio
import gc
import re
import threading
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from rag.embed import Embedder
from rag.errors import InputError
from rag.lang.asks import Form, answer_shape, question_form
from rag.lexical import LexicalIndex, open_lexical
from rag.params import ADAPTER_FILE, QueryAdapter, bundled
from rag.settings import RetrieveSettings, Settings
from rag.store import Store, chunk_from_record
from rag.types import Evidence, Filters

System = Literal["hybrid", "bm25", "dense"]


def chroma_where(filters: Filters | None) -> dict[str, Any] | None:
    """The Chroma metadata filter for ``filters``."""
    if filters is None or filters.empty:
        return None
    clauses: list[dict[str, Any]] = []
    if filters.doc_ids is not None:
        clauses.append({"doc_id": {"$in": list(filters.doc_ids) or [""]}})
    if filters.year_min is not None:
        clauses.append({"year": {"$gte": filters.year_min}})
    if filters.year_max is not None:
        clauses.append({"year": {"$lte": filters.year_max}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def query_adapters(opts: RetrieveSettings, embedder: str) -> dict[Form, np.ndarray]:
    """The bundled query maps, per query form, when they are on and fitted for ``embedder``; else none."""
    if not opts.query_adapter or embedder not in bundled(QueryAdapter, ADAPTER_FILE).embedders:
        return {}
    return _bundled_maps()


@lru_cache(maxsize=1)
def _bundled_maps() -> dict[Form, np.ndarray]:
    """Decoded once per process, not per retriever (the file holds ~0.8 MB of base64); read-only."""
    return bundled(QueryAdapter, ADAPTER_FILE).matrices()


def adapted(vectors: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``normalise(vectors @ matrix)`` row by row: a query adapter's map, as applied and as fitted."""
    mapped = vectors @ matrix
    return mapped / np.maximum(np.linalg.norm(mapped, axis=1, keepdims=True), 1e-12)


class Retriever:
    """Finds evidence for a question in one collection.

    >>> r = Retriever(collection="demo")                         # doctest: +SKIP
    >>> [e.chunk.doc_id for e in r.search("vitamin D and bone density", k=3)]   # doctest: +SKIP
    ['s2orc:123', 'pubmed:456', 's2orc:789']
    """

    def __init__(self, settings: Settings | None = None, collection: str | None = None, store: Store | None = None):
        self.settings = settings or (store.settings if store else Settings())
        self.store = store or Store(self.settings)
        self.name = collection or self.settings.collection
        self._col = self.store.collection(self.name)  # typed error now, not at the first question
        self._embedder = self.store.embedder_for(self._col)
        self._adapters = query_adapters(self.opts, self._embedder.name)
        self._lexical: LexicalIndex | None = None
        self._level_at = ""  # the collection revision the lexical index was last seen to match
        self._counted: tuple[str, int] = ("", 0)  # (revision, chunk count)
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        """The embedder of the collection (the one queries must use)."""
        return self._embedder

    @property
    def opts(self) -> RetrieveSettings:
        return self.settings.retrieve

    def lexical(self, revision: str | None = None) -> LexicalIndex:
        """The lexical index, brought level with the collection when another writer changed it without.
        ``revision``: the collection's, when the caller has just read it."""
        with self._lock:
            if self._lexical is None:
                self._lexical = open_lexical(self.settings, self.name)
            revision = revision or self.store.revision(self.name)
            if revision != self._level_at and self._lexical.revision != revision:
                self._level(self._lexical, revision)
            if self._lexical.revision == revision:
                self._level_at = revision
            return self._lexical

    def _level(self, index: LexicalIndex, revision: str) -> None:
        """Add what Chroma has and the index lacks, delete what it no longer has. Skipped while a writer
        holds the index: it records the revision itself when its step is done."""
        with index.writer(wait=False) as lex:
            if lex is None:
                return
            stored, indexed = self.store.chunk_ids(self.name), index.chunk_ids()
            lex.add(self.store.chunks_by_id(self._col, sorted(stored - indexed)).values())
            lex.delete(sorted(indexed - stored))
            lex.commit()
            lex.record(revision)

    def _known(self, doc_ids: list[str], revision: str) -> None:
        """A filter naming a paper the collection lacks (a typo, another collection's id) is an input error, not
        an empty answer. Checked only while the lexical index is level with the collection: else a paper just
        written by another process could look missing."""
        index = self._level_index(revision)
        if index is None:
            return
        if missing := index.papers_missing(doc_ids):
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise InputError("doc_ids", f"no paper {shown} in collection {self.name!r} (`rag papers` lists them)")

    def _count(self, revision: str) -> int:
        """The collection's chunk count, read once per revision (Chroma counts rows: 32 ms at 500k chunks)."""
        if self._counted[0] != revision:
            self._counted = (revision, int(self._col.count()))
        return self._counted[1]

    def query_vector(self, query: str) -> np.ndarray:
        """What the dense search compares the chunks with: the query's vector, through its form's adapter."""
        vector = self._embedder.embed([query])
        adapter = self._adapters.get(question_form(query))
        return vector if adapter is None else adapted(vector, adapter)

    def _dense(
        self, query: str, n: int, filters: Filters | None, revision: str
    ) -> list[tuple[str, float, str, dict[str, Any]]]:
        self._follow(revision)
        vector = self.query_vector(query)
        count = max(self._count(revision), 1)
        n = min(n, count)
        if filters is None or filters.empty:
            return self._query(vector, n, None)
        if not filters.doc_ids:
            return self._post_filtered(vector, n, filters, count)
        ids = self._within(filters, revision)
        return self._query(vector, n, chroma_where(filters)) if ids is None else self._exact(vector, n, ids)

    def _within(self, filters: Filters, revision: str) -> list[str] | None:
        """The ids of the chunks inside ``filters``, from the lexical index when it is level with the
        collection and they are at most ``exact_max_chunks``; else None."""
        index = self._level_index(revision)
        return None if index is None else index.chunk_ids_within(filters, self.opts.exact_max_chunks)

    def _level_index(self, revision: str) -> LexicalIndex | None:
        """The lexical index when it is level with the collection at ``revision`` (what a filter's lookups may
        trust), else None: another writer's step is not in it yet."""
        index = self.lexical(revision)  # which records the revision it was found level at
        return index if self._level_at == revision else None

    def _exact(self, vector: Any, n: int, ids: list[str]) -> list[tuple[str, float, str, dict[str, Any]]]:
        """A filter to a few papers, searched exactly: the query against their chunks' own vectors, fetched
        by id (~20 µs a chunk), then the best ``n`` chunks' rows (Chroma filters rows in SQLite before its
        vector search: 160 ms for 50 papers at 1M chunks)."""
        if not ids:
            return []
        got = self._col.get(ids=ids, include=["embeddings"])
        if not got["ids"]:
            return []
        vectors = np.asarray(got["embeddings"], dtype=np.float32)
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        sims = vectors @ q / np.maximum(np.linalg.norm(vectors, axis=1) * np.linalg.norm(q), 1e-12)  # cosine
        top = np.argsort(-sims, kind="stable")[:n]
        chosen = [got["ids"][i] for i in top]
        rows = self._col.get(ids=chosen, include=["documents", "metadatas"])
        found = dict(zip(rows["ids"], zip(rows["documents"], rows["metadatas"], strict=True), strict=True))
        return [
            (cid, float(sims[i]), found[cid][0] or "", dict(found[cid][1] or {}))
            for cid, i in zip(chosen, top, strict=True)
            if cid in found
        ]

    def _post_filtered(
        self, vector: Any, n: int, filters: Filters, count: int
    ) -> list[tuple[str, float, str, dict[str, Any]]]:
        """A year filter keeps many rows, and Chroma filters them in SQLite before its vector search (3.0 s
        at 1M chunks): search wider unfiltered and filter here — the same result when enough pass, else let
        Chroma filter. Reading 4x the rows is the cost (+34 ms at 1M); ``get(ids, where)`` on them is slower."""
        wide = min(n * self.opts.filter_overfetch, count)
        rows = self._query(vector, wide, None)
        kept = [row for row in rows if filters.admits(str(row[3].get("doc_id", "")), row[3].get("year"))]
        if len(kept) >= n or wide == count:
            return kept[:n]
        return self._query(vector, n, chroma_where(filters))

    def _query(self, vector: Any, n: int, where: dict[str, Any] | None) -> list[tuple[str, float, str, dict[str, Any]]]:
        got = self._col.query(
            query_embeddings=vector, n_results=n, where=where, include=["documents", "metadatas", "distances"]
        )
        return [
            (cid, 1.0 - float(dist), doc or "", dict(meta or {}))
            for cid, dist, doc, meta in zip(
                got["ids"][0], got["distances"][0], got["documents"][0], got["metadatas"][0], strict=True
            )
        ]

    def _follow(self, revision: str) -> None:
        """Take a handle whose vector search sees ``revision`` (embedded Chroma: after another process's writes)."""
        col = self.store.current(self._col, revision)
        if col is not self._col:
            self._col = col
            gc.collect()  # the old client's vector index is freed only by the cycle collector (+200 MB each at 100k)

    def search(
        self, query: str, k: int | None = None, filters: Filters | None = None, system: System = "hybrid"
    ) -> list[Evidence]:
        """The ``k`` best evidence chunks for ``query``: at most ``per_paper`` of one paper while other papers
        can fill the list, then the best of the rest (a question asked of one paper gets ``k`` of its chunks)."""
        k = k or self.opts.k
        chosen = spread(self._fused(query, filters, system), k, self.opts.per_paper)
        return [Evidence(rank=rank, **item) for rank, item in enumerate(chosen, start=1)]

    def rank_papers(
        self, query: str, k: int = 100, filters: Filters | None = None, system: System = "hybrid"
    ) -> list[tuple[str, float]]:
        """Papers ranked by their best chunk (what paper-level metrics score)."""
        return papers_by_best_chunk(self._fused(query, filters, system))[:k]

    async def asearch(self, query: str, k: int | None = None, filters: Filters | None = None) -> list[Evidence]:
        """:meth:`search` without blocking the event loop."""
        return await asyncio.to_thread(self.search, query, k, filters)

    def _fused(self, query: str, filters: Filters | None, system: System) -> list[dict[str, Any]]:
        return fuse(self.candidates(query, filters, system), self.opts, system, answer_shape(query))

    def candidates(
        self, query: str, filters: Filters | None = None, system: System = "hybrid", n: int | None = None
    ) -> list[dict[str, Any]]:
        """Each retriever's ``n`` best chunks (default ``candidates``), merged by chunk: ``chunk`` with
        ``dense_score``/``dense_rank`` and ``bm25_score``/``bm25_rank`` where that retriever found it."""
        n = n or self.opts.candidates
        revision = self.store.revision(self.name)  # read once: the count and the lexical index both follow it
        if filters is not None and filters.doc_ids:
            self._known(filters.doc_ids, revision)
        items: dict[str, dict[str, Any]] = {}
        if system in ("hybrid", "dense"):
            for rank, (cid, score, doc, meta) in enumerate(self._dense(query, n, filters, revision), start=1):
                items[cid] = {"chunk": chunk_from_record(cid, doc, meta), "dense_score": score, "dense_rank": rank}
        if system in ("hybrid", "bm25"):
            hits = self.lexical(revision).search(query, n, filters)
            records = self.store.chunks_by_id(self._col, [h.chunk_id for h in hits if h.chunk_id not in items])
            for hit in hits:
                if hit.chunk_id not in items:
                    if hit.chunk_id not in records:
                        continue  # indexed by a step whose Chroma write did not land; the next write fixes it
                    items[hit.chunk_id] = {"chunk": records[hit.chunk_id]}
                items[hit.chunk_id].update(bm25_score=hit.score, bm25_rank=hit.rank)
        return list(items.values())


def fuse(
    items: list[dict[str, Any]], opts: RetrieveSettings, system: System = "hybrid", shape: re.Pattern[str] | None = None
) -> list[dict[str, Any]]:
    """``items`` (from :meth:`Retriever.candidates`) each given a fused ``score``, best first; under convex
    fusion a chunk holding ``shape`` (the query's :func:`~rag.lang.asks.answer_shape`) gains ``shape_bonus``.
    Pure, so that the cross-validation in ``evals`` scores the very function the retriever runs."""
    ranges = {}
    for key in ("dense_score", "bm25_score"):
        values = [it[key] for it in items if it.get(key) is not None]
        ranges[key] = (min(values), max(values)) if values else (0.0, 0.0)
    bonus = opts.shape_bonus if system == "hybrid" and opts.fusion == "convex" else 0.0
    scored = []
    for item in items:
        score = _score(item, ranges, opts, system)
        if bonus and shape is not None and shape.search(item["chunk"].text):
            score += bonus  # a number before the counted noun: what the answer to "how many …" looks like
        scored.append({**item, "score": score})
    scored.sort(key=lambda it: -it["score"])
    return scored


def spread(fused: list[dict[str, Any]], k: int, per_paper: int) -> list[dict[str, Any]]:
    """The ``k`` best of ``fused`` (best first) with at most ``per_paper`` of one paper while other papers can fill
    them; when they cannot, the best of the chunks the cap passed over."""
    kept: list[dict[str, Any]] = []
    passed: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for item in fused:
        doc = item["chunk"].doc_id
        if counts.get(doc, 0) >= per_paper:
            passed.append(item)
            continue
        counts[doc] = counts.get(doc, 0) + 1
        kept.append(item)
        if len(kept) == k:
            return kept
    return kept + passed[: k - len(kept)]


def papers_by_best_chunk(fused: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """Papers with the score of their best chunk, best first (``fused`` is best first)."""
    best: dict[str, float] = {}
    for item in fused:
        best.setdefault(item["chunk"].doc_id, item["score"])
    return list(best.items())


def _score(
    item: dict[str, Any], ranges: dict[str, tuple[float, float]], opts: RetrieveSettings, system: System
) -> float:
    if system == "dense":
        return float(item["dense_score"])
    if system == "bm25":
        return float(item["bm25_score"])
    if opts.fusion == "rrf":
        return sum(1.0 / (opts.rrf_k + item[key]) for key in ("dense_rank", "bm25_rank") if item.get(key))
    w = opts.dense_weight
    return w * _minmax(item.get("dense_score"), ranges["dense_score"]) + (1 - w) * _minmax(
        item.get("bm25_score"), ranges["bm25_score"]
    )


def _minmax(value: float | None, bounds: tuple[float, float]) -> float:
    """Min-max normalised score over the candidate list; a chunk the retriever did not return gets 0."""
    if value is None:
        return 0.0
    lo, hi = bounds
    return (value - lo) / (hi - lo) if hi > lo else 1.0
