"""Hybrid retrieval: dense search in Chroma plus BM25 over the same chunks, fused.

Chroma's sparse/Search API exists only in its cloud, so the lexical side is a ``bm25s`` index
kept beside the store (``RAG_HOME/indexes/…``). It is derived data: it records the collection
revision it was built from and is rebuilt from Chroma whenever the collection changed (ingest,
re-ingest, deletion — in embedded and in server mode alike).

Fusion is per chunk: each list's scores are min-max normalised and mixed with a weight (or
reciprocal rank fusion); papers are then ranked by their best chunk, and at most ``per_paper``
chunks of one paper are kept so the evidence spans papers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.embed import Embedder
from rag.settings import RetrieveSettings, Settings
from rag.store import Store, chunk_from_record
from rag.types import Chunk, Evidence, Filters

System = Literal["hybrid", "bm25", "dense"]
_INDEX_FORMAT = 1


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def bm25_text(title: str, text: str, title_weight: int) -> str:
    """What BM25 indexes for a chunk: the title (repeated to boost it) and the text."""
    return " ".join([title] * (1 + title_weight) + [text]) if title else text


@dataclass
class _Hit:
    row: int
    score: float
    rank: int


class BM25Index:
    """A bm25s index over one collection's chunks, with the row → chunk mapping."""

    def __init__(
        self, model: Any, tokenizer: Any, ids: list[str], doc_ids: list[str], years: np.ndarray, revision: str
    ):
        self.model, self.tokenizer = model, tokenizer
        self.ids, self.doc_ids, self.years, self.revision = ids, doc_ids, years, revision
        self._row_of_doc: dict[str, list[int]] = {}
        for row, doc in enumerate(doc_ids):
            self._row_of_doc.setdefault(doc, []).append(row)

    @classmethod
    def build(cls, chunks: list[Chunk], revision: str, title_weight: int) -> BM25Index:
        import bm25s
        from bm25s.tokenization import Tokenizer

        if not chunks:  # an emptied collection: nothing to index (bm25s cannot index nothing)
            return cls(None, None, [], [], np.zeros(0, dtype=np.int32), revision)
        tokenizer = Tokenizer(stemmer=_stemmer(), stopwords="english")
        texts = [bm25_text(c.title, c.text, title_weight) for c in chunks]
        tokens = tokenizer.tokenize(texts, update_vocab=True, return_as="tuple", show_progress=False)
        model = bm25s.BM25()
        model.index(tokens, show_progress=False)
        years = np.array([c.year if c.year is not None else -1 for c in chunks], dtype=np.int32)
        return cls(model, tokenizer, [c.chunk_id for c in chunks], [c.doc_id for c in chunks], years, revision)

    def save(self, folder: Path) -> None:
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.ids:
            self.model.save(str(tmp), show_progress=False)
            self.tokenizer.save_vocab(str(tmp))
            self.tokenizer.save_stopwords(str(tmp))
        np.save(tmp / "years.npy", self.years)
        meta = {"format": _INDEX_FORMAT, "revision": self.revision, "ids": self.ids, "doc_ids": self.doc_ids}
        (tmp / "rows.json").write_text(json.dumps(meta))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)  # readers see the old index or the new one, never half of one

    @classmethod
    def load(cls, folder: Path) -> BM25Index | None:
        import bm25s
        from bm25s.tokenization import Tokenizer

        try:
            meta = json.loads((folder / "rows.json").read_text())
            if meta.get("format") != _INDEX_FORMAT:
                return None
            if not meta["ids"]:
                return cls(None, None, [], [], np.zeros(0, dtype=np.int32), meta["revision"])
            model = bm25s.BM25.load(str(folder), show_progress=False)
            tokenizer = Tokenizer(stemmer=_stemmer(), stopwords="english")
            tokenizer.load_vocab(str(folder))
            tokenizer.load_stopwords(str(folder))
            years = np.load(folder / "years.npy")
        except (OSError, ValueError, KeyError):
            return None  # missing or damaged: the caller rebuilds it
        return cls(model, tokenizer, meta["ids"], meta["doc_ids"], years, meta["revision"])

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[_Hit]:
        if not self.ids:
            return []
        tokens = self.tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)
        if not tokens or not tokens[0]:
            return []
        mask = self._mask(filters)
        k = min(k, len(self.ids))
        rows, scores = self.model.retrieve([tokens[0]], k=k, show_progress=False, weight_mask=mask, n_threads=0)
        hits = []
        for rank, (row, score) in enumerate(zip(rows[0], scores[0], strict=True), start=1):
            if score <= 0:
                break
            hits.append(_Hit(int(row), float(score), rank))
        return hits

    def _mask(self, filters: Filters | None) -> np.ndarray | None:
        if filters is None or filters.empty:
            return None
        mask = np.ones(len(self.ids), dtype=np.float32)
        if filters.doc_ids is not None:
            mask[:] = 0
            for doc in filters.doc_ids:
                mask[self._row_of_doc.get(doc, [])] = 1
        if filters.year_min is not None:
            mask[self.years < filters.year_min] = 0
        if filters.year_max is not None:
            mask[(self.years > filters.year_max) | (self.years < 0)] = 0
        return mask


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
        self._bm25: BM25Index | None = None
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        """The embedder of the collection (the one queries must use)."""
        return self._embedder

    @property
    def opts(self) -> RetrieveSettings:
        return self.settings.retrieve

    def _index_dir(self) -> Path:
        where = self.settings.chroma_url or "embedded"
        key = "embedded" if where == "embedded" else "server-" + hashlib.sha1(where.encode()).hexdigest()[:12]
        return self.settings.home / "indexes" / key / self.name / f"bm25-t{self.opts.title_weight}"

    def bm25(self) -> BM25Index:
        """The BM25 index, loaded or rebuilt so that it matches the collection's current revision."""
        with self._lock:
            revision = self.store.revision(self.name)
            if self._bm25 is not None and self._bm25.revision == revision:
                return self._bm25
            folder = self._index_dir()
            index = BM25Index.load(folder)
            if index is None or index.revision != revision:
                chunks = list(self.store.iter_chunks(self.name))
                index = BM25Index.build(chunks, revision, self.opts.title_weight)
                index.save(folder)
            self._bm25 = index
            return index

    def _dense(self, query: str, n: int, filters: Filters | None) -> list[tuple[str, float, str, dict[str, Any]]]:
        vector = self._embedder.embed([query])
        n = min(n, max(self._col.count(), 1))
        got = self._col.query(
            query_embeddings=vector,
            n_results=n,
            where=chroma_where(filters),
            include=["documents", "metadatas", "distances"],
        )
        return [
            (cid, 1.0 - float(dist), doc or "", dict(meta or {}))
            for cid, dist, doc, meta in zip(
                got["ids"][0], got["distances"][0], got["documents"][0], got["metadatas"][0], strict=True
            )
        ]

    def search(
        self, query: str, k: int | None = None, filters: Filters | None = None, system: System = "hybrid"
    ) -> list[Evidence]:
        """The ``k`` best evidence chunks for ``query`` (at most ``per_paper`` per paper)."""
        k = k or self.opts.k
        fused = self._fused(query, filters, system)
        evidence: list[Evidence] = []
        per_paper: dict[str, int] = {}
        for item in fused:
            doc = item["chunk"].doc_id
            if per_paper.get(doc, 0) >= self.opts.per_paper:
                continue
            per_paper[doc] = per_paper.get(doc, 0) + 1
            evidence.append(Evidence(rank=len(evidence) + 1, **item))
            if len(evidence) == k:
                break
        return evidence

    def rank_papers(
        self, query: str, k: int = 100, filters: Filters | None = None, system: System = "hybrid"
    ) -> list[tuple[str, float]]:
        """Papers ranked by their best chunk (what paper-level metrics score)."""
        best: dict[str, float] = {}
        for item in self._fused(query, filters, system):
            best.setdefault(item["chunk"].doc_id, item["score"])
        return sorted(best.items(), key=lambda kv: -kv[1])[:k]

    async def asearch(self, query: str, k: int | None = None, filters: Filters | None = None) -> list[Evidence]:
        """:meth:`search` without blocking the event loop."""
        return await asyncio.to_thread(self.search, query, k, filters)

    def _fused(self, query: str, filters: Filters | None, system: System) -> list[dict[str, Any]]:
        n = self.opts.candidates
        items: dict[str, dict[str, Any]] = {}
        if system in ("hybrid", "dense"):
            for rank, (cid, score, doc, meta) in enumerate(self._dense(query, n, filters), start=1):
                items[cid] = {"chunk": chunk_from_record(cid, doc, meta), "dense_score": score, "dense_rank": rank}
        if system in ("hybrid", "bm25"):
            index = self.bm25()
            hits = index.search(query, n, filters)
            missing = [index.ids[h.row] for h in hits if index.ids[h.row] not in items]
            records = self._fetch(missing)
            for hit in hits:
                cid = index.ids[hit.row]
                if cid not in items:
                    if cid not in records:
                        continue  # deleted since the index was built; the next call rebuilds it
                    items[cid] = {"chunk": records[cid]}
                items[cid].update(bm25_score=hit.score, bm25_rank=hit.rank)
        scored = list(items.values())
        ranges = {}
        for key in ("dense_score", "bm25_score"):
            values = [it[key] for it in scored if it.get(key) is not None]
            ranges[key] = (min(values), max(values)) if values else (0.0, 0.0)
        for item in scored:
            item["score"] = self._score(item, ranges, system)
        scored.sort(key=lambda it: -it["score"])
        return scored

    def _fetch(self, ids: list[str]) -> dict[str, Chunk]:
        if not ids:
            return {}
        got = self._col.get(ids=ids, include=["documents", "metadatas"])
        return {
            cid: chunk_from_record(cid, doc or "", dict(meta or {}))
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }

    def _score(self, item: dict[str, Any], ranges: dict[str, tuple[float, float]], system: System) -> float:
        if system == "dense":
            return float(item["dense_score"])
        if system == "bm25":
            return float(item["bm25_score"])
        if self.opts.fusion == "rrf":
            return sum(1.0 / (self.opts.rrf_k + item[key]) for key in ("dense_rank", "bm25_rank") if item.get(key))
        w = self.opts.dense_weight
        return w * _minmax(item.get("dense_score"), ranges["dense_score"]) + (1 - w) * _minmax(
            item.get("bm25_score"), ranges["bm25_score"]
        )


def _minmax(value: float | None, bounds: tuple[float, float]) -> float:
    """Min-max normalised score over the candidate list; a chunk the retriever did not return gets 0."""
    if value is None:
        return 0.0
    lo, hi = bounds
    return (value - lo) / (hi - lo) if hi > lo else 1.0
