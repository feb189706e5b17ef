"""The lexical index: BM25 over one collection's chunks, in a persistent tantivy index beside the store.

Incremental: adding or removing papers adds or deletes their chunks in place (new segments, merged
in the background), never a rebuild. It opens memory-mapped in milliseconds and holds no copy of the
collection in RAM. Many processes read it; one writes at a time (tantivy's writer lock, waited for).
A commit is atomic, and a writer commits whole papers, so a reader never sees half a paper.

It records the collection revision (:meth:`rag.store.Store.revision`) it is known to match. Every
writer in this project updates it together with Chroma (:mod:`rag.indexing`); when the revisions
differ while no writer holds the lock — a writer elsewhere (another host on the same Chroma server),
an older version, a crash between the two writes — :meth:`LexicalIndex.sync` brings it level by
comparing chunk ids with Chroma's: only the difference is fetched and written.

Tokens are this index's own format: lower-cased ``\\w\\w+`` words, the English stop list of bm25s,
the Snowball English stemmer (PyStemmer) — what the earlier bm25s index used, so scores stay BM25
over the same terms. Tantivy scores with k1 = 1.2, b = 0.75 (Lucene's defaults).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rag.errors import StoreError
from rag.settings import Settings
from rag.types import Chunk, Filters

FORMAT = 2  # 1 was the bm25s index; the format is in the folder name, so a new format builds a new folder
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_WRITER_HEAP = 64_000_000  # bytes of indexing buffer: a 512-chunk step fits many times over
_LOCK_POLL_S = 0.05
_ALL_IDS_PAGE = 10_000  # stored chunk ids read per search page when listing the whole index
_NO_YEAR = -1  # papers without a year; never inside a year filter


@cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@cache
def _stop_words() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def analyze(text: str) -> list[str]:
    """The index terms of ``text``: ``"Vitamin D reverses the losses"`` → ``["vitamin", "revers", "loss"]``."""
    stop = _stop_words()
    words = [w for w in _TOKEN.findall(text.lower()) if w not in stop]
    return list(_stemmer().stemWords(words))


def bm25_text(title: str, text: str, title_weight: int) -> str:
    """What BM25 indexes for a chunk: the title (repeated to boost it) and the text."""
    return " ".join([title] * (1 + title_weight) + [text]) if title else text


@dataclass(frozen=True)
class LexicalHit:
    chunk_id: str
    score: float
    rank: int


def _schema() -> Any:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("chunk_id", stored=True, tokenizer_name="raw")
    builder.add_text_field("doc_id", stored=False, tokenizer_name="raw")
    builder.add_text_field("body", stored=False, tokenizer_name="whitespace")
    builder.add_integer_field("year", indexed=True, fast=True)
    return builder.build()


class LexicalIndex:
    """One collection's BM25 index in ``folder`` (created when missing)."""

    def __init__(self, folder: Path, title_weight: int = 0, lock_timeout: float = 600.0) -> None:
        import tantivy

        self.folder, self.title_weight, self.lock_timeout = folder, title_weight, lock_timeout
        self._meta = folder / "rag-meta.json"
        if self._read_meta().get("format") not in (None, FORMAT):
            raise StoreError(f"{folder} holds a lexical index of another format; delete the folder to rebuild it")
        folder.mkdir(parents=True, exist_ok=True)
        self.schema = _schema()
        self.index = tantivy.Index(self.schema, path=str(folder), reuse=True)
        self.index.config_reader(reload_policy="Manual")

    # -- state ------------------------------------------------------------------------------
    def _read_meta(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self._meta.read_text()))
        except (OSError, ValueError):
            return {}

    @property
    def revision(self) -> str:
        """The collection revision the index is known to match ("" when unknown)."""
        return str(self._read_meta().get("revision", ""))

    def _set_revision(self, revision: str) -> None:  # only through a LexicalWriter: it holds the lock
        tmp = self._meta.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "revision": revision}))
        os.replace(tmp, self._meta)  # readers see the old revision or the new one

    def count(self) -> int:
        self.index.reload()
        return int(self.index.searcher().num_docs)

    # -- writing ----------------------------------------------------------------------------
    @contextmanager
    def writer(self, wait: bool = True) -> Iterator[LexicalWriter | None]:
        """The index's one writer, across processes; waits for another writer to finish (``wait``), or
        gives None at once when one is busy."""
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                raw = self.index.writer(heap_size=_WRITER_HEAP, num_threads=1)
                break
            except ValueError as exc:  # tantivy: "Failed to acquire Lockfile: LockBusy"
                if "Lock" not in str(exc):
                    raise
                if not wait:
                    yield None
                    return
                if time.monotonic() > deadline:
                    raise StoreError(f"the lexical index {self.folder} stayed locked by another writer") from exc
                time.sleep(_LOCK_POLL_S)
        writer = LexicalWriter(self, raw)
        try:
            yield writer
        finally:
            writer.close()

    # -- reading ----------------------------------------------------------------------------
    def search(self, query: str, k: int, filters: Filters | None = None) -> list[LexicalHit]:
        """The ``k`` best chunks for ``query`` by BM25, within ``filters``."""
        import tantivy

        terms = list(dict.fromkeys(analyze(query)))
        if not terms:
            return []
        should = [
            (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "body", t, index_option="freq")) for t in terms
        ]
        query_obj = tantivy.Query.boolean_query(should)
        must = self._filters(filters)
        if must:
            query_obj = tantivy.Query.boolean_query([(tantivy.Occur.Must, query_obj), *must])
        self.index.reload()
        searcher = self.index.searcher()
        result = searcher.search(query_obj, limit=k, count=False)
        return [
            LexicalHit(str(searcher.doc(addr)["chunk_id"][0]), float(score), rank)
            for rank, (score, addr) in enumerate(result.hits, start=1)
        ]

    def _filters(self, filters: Filters | None) -> list[Any]:
        import tantivy

        if filters is None or filters.empty:
            return []
        must: list[Any] = []
        if filters.doc_ids is not None:
            must.append(tantivy.Query.term_set_query(self.schema, "doc_id", list(filters.doc_ids)))
        if filters.year_min is not None or filters.year_max is not None:
            low = filters.year_min if filters.year_min is not None else _NO_YEAR + 1
            years = tantivy.Query.range_query(self.schema, "year", tantivy.FieldType.Integer, low, filters.year_max)
            must.append(years)
        # filters restrict, they do not score: BM25 stays BM25 with or without them
        return [(tantivy.Occur.Must, tantivy.Query.const_score_query(q, 0.0)) for q in must]

    def chunk_ids_within(self, filters: Filters, limit: int) -> list[str] | None:
        """The ids of the chunks inside (non-empty) ``filters``, or None when there are more than ``limit``."""
        import tantivy

        self.index.reload()
        searcher = self.index.searcher()
        hits = searcher.search(tantivy.Query.boolean_query(self._filters(filters)), limit=limit + 1, count=False).hits
        if len(hits) > limit:
            return None
        return [str(searcher.doc(addr)["chunk_id"][0]) for _, addr in hits]

    def papers_missing(self, doc_ids: Sequence[str]) -> list[str]:
        """Those of ``doc_ids`` with no chunk in the index, in the order given."""
        import tantivy

        self.index.reload()
        searcher = self.index.searcher()
        return [
            doc
            for doc in dict.fromkeys(doc_ids)
            if not searcher.search(tantivy.Query.term_query(self.schema, "doc_id", doc), limit=1, count=False).hits
        ]

    def chunk_ids(self) -> set[str]:
        """Every chunk id in the index (to compare with Chroma's)."""
        import tantivy

        self.index.reload()
        searcher = self.index.searcher()
        total, out = int(searcher.num_docs), set[str]()
        for offset in range(0, total, _ALL_IDS_PAGE):
            page = searcher.search(tantivy.Query.all_query(), limit=_ALL_IDS_PAGE, offset=offset, count=False)
            out.update(str(searcher.doc(addr)["chunk_id"][0]) for _, addr in page.hits)
        return out


class LexicalWriter:
    """Adds and deletes chunks; each :meth:`commit` is atomic for readers."""

    def __init__(self, index: LexicalIndex, raw: Any) -> None:
        self.index, self.raw = index, raw

    def add(self, chunks: Iterable[Chunk]) -> int:
        """Index chunks (an id already there is replaced, so a repeated write stores it once)."""
        import tantivy

        n = 0
        for c in chunks:
            self.raw.delete_documents_by_term("chunk_id", c.chunk_id)
            body = " ".join(analyze(bm25_text(c.title, c.text, self.index.title_weight)))
            year = c.year if c.year is not None else _NO_YEAR
            self.raw.add_document(tantivy.Document(chunk_id=c.chunk_id, doc_id=c.doc_id, body=body, year=year))
            n += 1
        return n

    def delete(self, chunk_ids: Sequence[str]) -> None:
        for cid in chunk_ids:
            self.raw.delete_documents_by_term("chunk_id", cid)

    def delete_papers(self, doc_ids: Sequence[str]) -> None:
        for doc in doc_ids:
            self.raw.delete_documents_by_term("doc_id", doc)

    def commit(self) -> None:
        """Make the changes visible to readers, all at once."""
        self.raw.commit()

    def record(self, revision: str) -> None:
        """Note the collection revision the index now matches."""
        self.index._set_revision(revision)

    def close(self) -> None:
        self.raw.wait_merging_threads()  # also drops the writer: the lock is free when this returns


def lexical_folder(home: Path, chroma_url: str | None, collection: str, title_weight: int) -> Path:
    """Where a collection's lexical index lives: under ``RAG_HOME/indexes``, one folder per store (the
    embedded one, or a Chroma server by URL), shared by every process of that ``RAG_HOME``."""
    import hashlib

    key = "server-" + hashlib.sha1(chroma_url.encode()).hexdigest()[:12] if chroma_url else "embedded"
    return home / "indexes" / key / collection / f"lexical-v{FORMAT}-t{title_weight}"


def open_lexical(settings: Settings, collection: str) -> LexicalIndex:
    """The lexical index of ``collection`` that these settings write and read."""
    weight = settings.retrieve.title_weight
    return LexicalIndex(lexical_folder(settings.home, settings.chroma_url, collection, weight), weight)
