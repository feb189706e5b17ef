"""The vector store: Chroma collections of embedded chunks, and the ingest pipeline that fills them.

Embedded Chroma (``PersistentClient`` under ``RAG_HOME``) by default; a Chroma server when
``RAG_CHROMA_URL`` is set. We always pass our own vectors (never Chroma's default embedder, which
downloads a model), and record the embedder's name in the collection metadata so queries use it.

Ingest is idempotent and resumable: chunk ids are content hashes, and every chunk carries its
paper's hash and chunk count, so a paper is "done" exactly when all its chunks are stored. Papers
are embedded and written in steps; an interrupted run loses at most one step and the next run
picks up the rest. A changed paper's new chunks are written before its stale ones are removed, so
it is never missing.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rag.chunk import chunk_paper, paper_hash
from rag.embed import ChromaEmbedding, Embedder, make_embedder
from rag.errors import (
    CollectionNotFoundError,
    ConfigError,
    EmbedderMismatchError,
    InputError,
    StoreError,
    StoreUnavailableError,
)
from rag.ingest import collect_files, read_path
from rag.settings import Settings
from rag.types import Chunk, CollectionStats, IngestReport, InputFailure, Paper

EMBEDDER_KEY = "rag:embedder"
REVISION_KEY = "rag:revision"


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")


def check_collection_name(name: str) -> str:
    """Chroma's naming rule, checked up front with an actionable message."""
    if not _NAME.match(name) or ".." in name:
        raise ConfigError(
            f"Invalid collection name {name!r}: use 3-512 characters from letters, digits, '.', '_' and '-', "
            "starting and ending with a letter or digit."
        )
    return name


def _failure(exc: InputError) -> InputFailure:
    return InputFailure(source=exc.source, error=type(exc).__name__, reason=exc.reason)


def chunk_metadata(chunk: Chunk) -> dict[str, Any]:
    """Chunk fields as Chroma metadata (which holds no None and no lists)."""
    meta: dict[str, Any] = {
        "doc_id": chunk.doc_id,
        "index": chunk.index,
        "n_chunks": chunk.n_chunks,
        "section": chunk.section,
        "n_tokens": chunk.n_tokens,
        "title": chunk.title,
        "authors": "; ".join(chunk.authors),
        "source": chunk.source,
        "paper_hash": chunk.paper_hash,
    }
    if chunk.year is not None:
        meta["year"] = chunk.year
    if chunk.doi:
        meta["doi"] = chunk.doi
    return meta


def chunk_from_record(chunk_id: str, text: str, meta: dict[str, Any]) -> Chunk:
    """Rebuild a :class:`Chunk` from what Chroma returns."""
    return Chunk(
        chunk_id=chunk_id,
        doc_id=str(meta["doc_id"]),
        text=text,
        index=int(meta.get("index", 0)),
        n_chunks=int(meta.get("n_chunks", 1)),
        section=str(meta.get("section", "")),
        n_tokens=int(meta.get("n_tokens", 0)),
        title=str(meta.get("title", "")),
        year=meta.get("year"),
        authors=[a for a in str(meta.get("authors", "")).split("; ") if a],
        doi=meta.get("doi"),
        source=str(meta.get("source", "")),
        paper_hash=str(meta.get("paper_hash", "")),
    )


def embedding_text(chunk: Chunk) -> str:
    """What the embedder reads for a chunk: the paper title gives each chunk its context."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


class Store:
    """Access to the Chroma collections of one ``RAG_HOME`` or Chroma server.

    >>> store = Store(Settings(home="/tmp/rag-doc"))          # doctest: +SKIP
    >>> store.ingest(["papers/"], collection="demo").papers_added  # doctest: +SKIP
    12
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._client: Any = None
        self._embedders: dict[str, Embedder] = {}

    # -- connection -----------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        url = self.settings.chroma_url
        if not url:
            self.settings.chroma_path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(self.settings.chroma_path), settings=chroma_settings)
        parsed = urlparse(url if "://" in url else f"http://{url}")
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ConfigError(f"RAG_CHROMA_URL={url!r} is not an http(s) URL like http://127.0.0.1:8000")
        ssl = parsed.scheme == "https"
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname, port=parsed.port or (443 if ssl else 8000), ssl=ssl, settings=chroma_settings
            )
            client.heartbeat()
        except Exception as exc:  # chromadb raises assorted connection errors
            raise StoreUnavailableError(
                f"Cannot reach the Chroma server at {url} ({type(exc).__name__}: {exc}). "
                "Start it with `chroma run --path DIR --port PORT`, or unset RAG_CHROMA_URL to use the embedded store."
            ) from exc
        return client

    @property
    def location(self) -> str:
        return self.settings.chroma_url or str(self.settings.chroma_path)

    # -- collections ----------------------------------------------------------------------
    def list_collections(self) -> list[str]:
        return sorted(c.name for c in self.client.list_collections())

    def collection(self, name: str | None = None) -> Any:
        """An existing collection; :class:`CollectionNotFoundError` when there is none."""
        name = name or self.settings.collection
        try:
            return self.client.get_collection(name)
        except Exception as exc:
            if isinstance(exc, StoreError):
                raise
            names = self.list_collections()
            if name not in names:
                raise CollectionNotFoundError(name, names) from None
            raise StoreError(f"Cannot open collection {name!r}: {exc}") from exc

    def _collection_for_write(self, name: str, embedder: Embedder) -> Any:
        if name in self.list_collections():
            col = self.collection(name)
            built_with = (col.metadata or {}).get(EMBEDDER_KEY)
            if built_with and built_with != embedder.name:
                raise EmbedderMismatchError(
                    f"Collection {name!r} was built with {built_with!r} but the configured embedder is {embedder.name!r}; "
                    "vectors from different embedders cannot be mixed. Use another collection, or the matching settings."
                )
            return col
        return self.client.create_collection(
            name,
            metadata={EMBEDDER_KEY: embedder.name, REVISION_KEY: uuid.uuid4().hex},
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=ChromaEmbedding(embedder.name, embedder),
        )

    def embedder_for(self, collection: Any) -> Embedder:
        """The embedder a collection was built with (queries must use the same one)."""
        name = (collection.metadata or {}).get(EMBEDDER_KEY) or make_embedder(self.settings).name
        if name not in self._embedders:
            self._embedders[name] = make_embedder(self.settings, name)
        return self._embedders[name]

    def revision(self, name: str | None = None) -> str:
        """Changes whenever the collection's content changes (used to keep derived indexes fresh)."""
        return str((self.collection(name).metadata or {}).get(REVISION_KEY, ""))

    def _bump_revision(self, col: Any) -> None:
        meta = {k: v for k, v in (col.metadata or {}).items() if not k.startswith("hnsw:")}
        meta[REVISION_KEY] = uuid.uuid4().hex
        col.modify(metadata=meta)

    def stats(self, name: str | None = None) -> list[CollectionStats]:
        """Paper and chunk counts, for one collection or all."""
        names = [name] if name else self.list_collections()
        out = []
        for n in names:
            col = self.collection(n)
            first_chunks = col.get(where={"index": 0}, include=[])["ids"]
            out.append(
                CollectionStats(
                    name=n,
                    papers=len(first_chunks),
                    chunks=col.count(),
                    embedder=(col.metadata or {}).get(EMBEDDER_KEY, ""),
                )
            )
        return out

    def delete_collection(self, name: str) -> None:
        self.collection(name)  # typed error when missing
        self.client.delete_collection(name)

    def delete_papers(self, doc_ids: Sequence[str], collection: str | None = None) -> int:
        """Remove papers (all their chunks); returns the number of chunks removed."""
        col = self.collection(collection)
        removed = 0
        for batch in _batched(list(doc_ids), 200):
            ids = col.get(where={"doc_id": {"$in": batch}}, include=[])["ids"]
            for id_batch in _batched(ids, self.client.get_max_batch_size()):
                col.delete(ids=id_batch)
            removed += len(ids)
        if removed:
            self._bump_revision(col)
        return removed

    def iter_chunks(self, collection: str | None = None, page: int = 2000) -> Iterator[Chunk]:
        """Every chunk of a collection (for building derived indexes)."""
        col = self.collection(collection)
        offset = 0
        while True:
            got = col.get(include=["documents", "metadatas"], limit=page, offset=offset)
            if not got["ids"]:
                return
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                yield chunk_from_record(cid, doc or "", dict(meta or {}))
            offset += len(got["ids"])

    # -- ingest ---------------------------------------------------------------------------
    def ingest(
        self, paths: Iterable[str | Path], collection: str | None = None, progress: bool | None = None
    ) -> IngestReport:
        """Read, chunk, embed and store papers from files and folders.

        Bad inputs are reported in the returned :class:`IngestReport` (``failed``) and the rest
        is stored. Re-running with the same inputs stores nothing new.
        """
        started = time.perf_counter()
        name = check_collection_name(collection or self.settings.collection)
        report = IngestReport(collection=name)
        files, errors = collect_files(paths)
        report.files = len(files)
        report.failed.extend(_failure(e) for e in errors)
        show = sys.stderr.isatty() if progress is None else progress

        papers: dict[str, Paper] = {}
        with _progress(show) as bar:
            reading = bar.add_task("Reading", total=len(files), rate="")
            for path in files:
                for item in read_path(path, self.settings.ingest.encoding):
                    if isinstance(item, InputError):
                        report.failed.append(_failure(item))
                    elif item.doc_id in papers:
                        report.skipped.append(
                            InputFailure(
                                source=item.source,
                                error="DuplicateDocId",
                                reason=f"doc_id {item.doc_id!r} already read from {papers[item.doc_id].source}",
                            )
                        )
                    else:
                        papers[item.doc_id] = item
                bar.advance(reading)
            if not papers:
                report.seconds = time.perf_counter() - started
                return report

            embedder = make_embedder(self.settings)
            col = self._collection_for_write(name, embedder)
            todo = self._plan(col, list(papers.values()), report)
            chunks = [c for p in todo for c in chunk_paper(p, self.settings.chunk)]
            total_tokens = sum(c.n_tokens for c in chunks)
            embedding = bar.add_task("Embedding", total=len(chunks), rate="")
            done_tokens = 0
            t0 = time.perf_counter()

            def write(group: list[Chunk], vectors: Any) -> int:
                self._write(col, group, vectors)
                return self._remove_stale(col, group)

            # Writing step k overlaps embedding step k+1 (ONNX Runtime releases the GIL).
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-write") as writer:
                pending: tuple[Future[int], list[Chunk]] | None = None
                try:
                    for group in _groups(chunks, self.settings.ingest.group_chunks):
                        texts = [embedding_text(c) for c in group]
                        vectors = embedder.embed(texts, progress=lambda n: bar.advance(embedding, n))
                        if pending:
                            report.chunks_removed += self._finish(pending, report)
                        pending = (writer.submit(write, group, vectors), group)
                        done_tokens += sum(c.n_tokens for c in group)
                        rate = done_tokens / max(time.perf_counter() - t0, 1e-9)
                        bar.update(embedding, rate=f"{rate:,.0f} tok/s · {done_tokens:,}/{total_tokens:,} tokens")
                    if pending:
                        report.chunks_removed += self._finish(pending, report)
                        pending = None
                finally:
                    if pending:  # interrupted: let the step in flight land, so its papers count as done
                        pending[0].exception()
            if chunks or report.chunks_removed:
                self._bump_revision(col)
        report.seconds = time.perf_counter() - started
        return report

    @staticmethod
    def _finish(pending: tuple[Future[int], list[Chunk]], report: IngestReport) -> int:
        future, group = pending
        removed = future.result()
        report.chunks_added += len(group)
        report.tokens_embedded += sum(c.n_tokens for c in group)
        return removed

    def _plan(self, col: Any, papers: list[Paper], report: IngestReport) -> list[Paper]:
        """Which papers need (re)embedding: new, changed, or left incomplete by an interrupted run."""
        stored: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        n_chunks: dict[tuple[str, str], int] = {}
        for batch in _batched([p.doc_id for p in papers], 250):
            got = col.get(where={"doc_id": {"$in": batch}}, include=["metadatas"])
            for meta in got["metadatas"] or []:
                doc, h = str(meta["doc_id"]), str(meta.get("paper_hash", ""))
                stored[doc][h] += 1
                n_chunks[(doc, h)] = int(meta.get("n_chunks", 0))
        todo = []
        for paper in papers:
            h = paper_hash(paper, self.settings.chunk)
            versions = stored.get(paper.doc_id, {})
            complete = h in versions and versions[h] == n_chunks[(paper.doc_id, h)]
            if complete and len(versions) == 1:
                report.papers_unchanged += 1
                continue
            if any(v != h for v in versions):
                report.papers_updated += 1
            else:  # new, or left incomplete by an interrupted run
                report.papers_added += 1
            todo.append(paper)
        return todo

    def _write(self, col: Any, chunks: list[Chunk], vectors: Any) -> None:
        size = self.client.get_max_batch_size()
        for start in range(0, len(chunks), size):
            part = chunks[start : start + size]
            col.upsert(
                ids=[c.chunk_id for c in part],
                documents=[c.text for c in part],
                metadatas=[chunk_metadata(c) for c in part],
                embeddings=vectors[start : start + size],
            )

    def _remove_stale(self, col: Any, group: list[Chunk]) -> int:
        """Delete chunks of papers in ``group`` that belong to an older version of the paper."""
        removed = 0
        finished = {c.doc_id: c.paper_hash for c in group if c.index == c.n_chunks - 1}
        if not finished:
            return 0
        got = col.get(where={"doc_id": {"$in": list(finished)}}, include=["metadatas"])
        stale = [
            cid
            for cid, m in zip(got["ids"], got["metadatas"], strict=True)
            if m.get("paper_hash") != finished[str(m["doc_id"])]
        ]
        for batch in _batched(stale, self.client.get_max_batch_size()):
            col.delete(ids=batch)
            removed += len(batch)
        return removed


def _batched(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _groups(chunks: list[Chunk], size: int) -> Iterator[list[Chunk]]:
    """Steps of about ``size`` chunks that never split a paper (so a step completes whole papers)."""
    group: list[Chunk] = []
    for chunk in chunks:
        group.append(chunk)
        if len(group) >= size and chunk.index == chunk.n_chunks - 1:
            yield group
            group = []
    if group:
        yield group


@contextmanager
def _progress(show: bool) -> Iterator[Any]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[rate]}"),
        console=Console(stderr=True),
        disable=not show,
        transient=False,
    ) as bar:
        yield bar


def ingest(
    paths: Iterable[str | Path] | str | Path,
    collection: str | None = None,
    settings: Settings | None = None,
    progress: bool | None = None,
) -> IngestReport:
    """Ingest files, folders or corpus records into a collection.

    >>> report = ingest("papers/", collection="demo")   # doctest: +SKIP
    >>> report.papers_added, report.failed               # doctest: +SKIP
    (12, [])
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return Store(settings).ingest(paths, collection=collection, progress=progress)
