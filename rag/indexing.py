"""Indexing: read → chunk → embed → write, the pipeline that fills a collection.

Idempotent and resumable: chunk ids are content hashes, and every chunk carries its paper's hash
and chunk count, so a paper is "done" exactly when all its chunks are stored. Papers are embedded
and written in steps; an interrupted run loses at most one step and the next run picks up the
rest. A changed paper's new chunks are written before its stale ones are removed, so it is never
missing. Progress is reported to a callback (:class:`~rag.types.IngestProgress` events); the CLI
turns them into a bar.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rag.chunk import chunk_paper, paper_hash
from rag.embed import make_embedder
from rag.errors import InputError
from rag.pdf.reader import READER_VERSION
from rag.read import PDF_SUFFIXES, collect_files, file_doc_id, read_path
from rag.settings import Settings
from rag.sidecar import SidecarRecord, apply, match
from rag.store import Store, check_collection_name
from rag.types import Chunk, Embedder, IngestProgress, IngestReport, InputFailure, Paper, PaperInfo

OnProgress = Callable[[IngestProgress], None]


def embedding_text(chunk: Chunk) -> str:
    """What the embedder reads for a chunk: the paper title gives each chunk its context."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


def _failure(exc: InputError) -> InputFailure:
    return InputFailure(source=exc.source, error=type(exc).__name__, reason=exc.reason)


class Indexer:
    """Fills the collections of one store.

    >>> Indexer(Store(Settings(home="/tmp/rag-doc"))).ingest(["papers/"], "demo").papers_added  # doctest: +SKIP
    12
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.settings = store.settings

    def ingest(
        self,
        paths: Iterable[str | Path],
        collection: str | None = None,
        on_progress: OnProgress | None = None,
        sidecar: Sequence[SidecarRecord] = (),
    ) -> IngestReport:
        """Read, chunk, embed and store papers from files and folders.

        Bad inputs are reported in the returned :class:`IngestReport` (``failed``) and the rest is
        stored. Re-running with the same inputs stores nothing new, and unchanged PDFs are not even
        read again. ``sidecar`` metadata (BibTeX, CSL-JSON, Zotero: :mod:`rag.sidecar`) wins over
        what the reader found, for the papers it matches.
        """
        started = time.perf_counter()
        name = check_collection_name(collection or self.settings.collection)
        report = IngestReport(collection=name)
        papers = self._read(name, paths, report, on_progress or (lambda _: None), sidecar)
        self._store(name, papers, report, on_progress or (lambda _: None))
        report.seconds = time.perf_counter() - started
        return report

    def add(
        self, papers: Sequence[Paper], collection: str | None = None, on_progress: OnProgress | None = None
    ) -> IngestReport:
        """Chunk, embed and store papers that are already read (e.g. found by :mod:`rag.find`): new and
        changed ones are written, unchanged ones counted, a repeated ``doc_id`` skipped."""
        started = time.perf_counter()
        name = check_collection_name(collection or self.settings.collection)
        report = IngestReport(collection=name)
        unique: dict[str, Paper] = {}
        for paper in papers:
            self._take(paper, unique, report, (), None)
        self._store(name, list(unique.values()), report, on_progress or (lambda _: None))
        report.seconds = time.perf_counter() - started
        return report

    def _store(self, name: str, papers: list[Paper], report: IngestReport, on_progress: OnProgress) -> None:
        if not papers:
            return
        embedder = make_embedder(self.settings)
        col = self.store.collection_for_write(name, embedder)
        todo = self._plan(col, papers, report)
        chunks = [c for p in todo for c in self._chunks(p)]
        try:
            self._embed_and_write(col, chunks, embedder, report, on_progress)
        finally:  # also when interrupted: a step may have landed, and derived indexes must see it
            if chunks or report.chunks_removed:
                self.store.bump_revision(col)

    def _chunks(self, paper: Paper) -> list[Chunk]:
        """The paper's chunks; the first carries what is stored once per paper (report, references)."""
        chunks = chunk_paper(paper, self.settings.chunk)
        digest = str(paper.meta.get("source_sha", ""))
        for chunk in chunks:
            chunk.source_sha = digest
        if chunks and (paper.report or paper.references or paper.arxiv_id):
            info = PaperInfo(
                arxiv_id=paper.arxiv_id,
                sections=[s.title for s in paper.sections if s.kind == "body" and s.title],
                references=paper.references,
                report=paper.report,
            )
            chunks[0].paper_info = info.model_dump_json(exclude_defaults=True)
        return chunks

    def _source_shas(self, files: list[Path]) -> dict[Path, str]:
        """A digest per PDF of its bytes and of how it is read: the same file read the same way is the same paper."""
        how = f"{READER_VERSION}|ocr={self.settings.ingest.ocr}|{self.settings.chunk.model_dump_json()}".encode()
        out = {}
        for path in files:
            if path.suffix.lower() in PDF_SUFFIXES:
                try:
                    out[path] = hashlib.sha256(how + path.read_bytes()).hexdigest()[:32]
                except OSError:
                    continue  # the reader reports it
        return out

    def _unchanged(self, name: str, shas: dict[Path, str]) -> set[Path]:
        if not shas or name not in self.store.list_collections():
            return set()
        by_doc = {file_doc_id(path): path for path in shas}
        same = self.store.unchanged_sources(self.store.collection(name), {d: shas[p] for d, p in by_doc.items()})
        return {by_doc[d] for d in same}

    def _read(
        self,
        name: str,
        paths: Iterable[str | Path],
        report: IngestReport,
        on_progress: OnProgress,
        sidecar: Sequence[SidecarRecord],
    ) -> list[Paper]:
        files, errors = collect_files(paths)
        report.files = len(files)
        report.failed.extend(_failure(e) for e in errors)
        shas = self._source_shas(files)
        # with sidecar metadata given, every file is read again: its metadata may be new or corrected
        unchanged = set() if sidecar else self._unchanged(name, shas)
        report.papers_unchanged += len(unchanged)
        papers: dict[str, Paper] = {}
        for done, path in enumerate(files, start=1):
            if path not in unchanged:
                for item in read_path(path, self.settings.ingest.encoding, ocr=self.settings.ingest.ocr):
                    self._take(item, papers, report, sidecar, shas.get(path))
            on_progress(IngestProgress(stage="read", done=done, total=len(files)))
        return list(papers.values())

    @staticmethod
    def _take(
        item: Paper | InputError,
        papers: dict[str, Paper],
        report: IngestReport,
        sidecar: Sequence[SidecarRecord],
        source_sha: str | None,
    ) -> None:
        if isinstance(item, InputError):
            report.failed.append(_failure(item))
            return
        if item.doc_id in papers:
            reason = f"doc_id {item.doc_id!r} already read from {papers[item.doc_id].source}"
            report.skipped.append(InputFailure(source=item.source, error="DuplicateDocId", reason=reason))
            return
        record = match(item, sidecar) if sidecar else None
        paper = apply(item, record) if record else item
        if source_sha:
            paper.meta["source_sha"] = source_sha
        if paper.report:
            report.documents.append(paper.report)
        papers[paper.doc_id] = paper

    def _plan(self, col: Any, papers: list[Paper], report: IngestReport) -> list[Paper]:
        """Which papers need (re)embedding: new, changed, or left incomplete by an interrupted run."""
        stored = self.store.stored_versions(col, [p.doc_id for p in papers])
        todo = []
        for paper in papers:
            h = paper_hash(paper, self.settings.chunk)
            versions = stored.get(paper.doc_id, {})  # paper hash -> (chunks stored, chunks it should have)
            complete = h in versions and versions[h][0] == versions[h][1]
            if complete and len(versions) == 1:
                report.papers_unchanged += 1
                continue
            if any(v != h for v in versions):
                report.papers_updated += 1
            else:  # new, or left incomplete by an interrupted run
                report.papers_added += 1
            todo.append(paper)
        return todo

    def _embed_and_write(
        self, col: Any, chunks: list[Chunk], embedder: Embedder, report: IngestReport, on_progress: OnProgress
    ) -> None:
        total_tokens = sum(c.n_tokens for c in chunks)
        done = done_tokens = 0

        def write(group: list[Chunk], vectors: Any) -> int:
            self.store.write_chunks(col, group, vectors)
            return self.store.remove_stale(col, group)

        def embedded(n: int) -> None:
            nonlocal done
            done += n
            on_progress(
                IngestProgress(
                    stage="embed", done=done, total=len(chunks), tokens_done=done_tokens, tokens_total=total_tokens
                )
            )

        # Writing step k overlaps embedding step k+1 (ONNX Runtime releases the GIL).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-write") as writer:
            pending: tuple[Future[int], list[Chunk]] | None = None
            try:
                for group in _groups(chunks, self.settings.ingest.group_chunks):
                    vectors = embedder.embed([embedding_text(c) for c in group], progress=embedded)
                    if pending:
                        _finish(pending, report)
                    pending = (writer.submit(write, group, vectors), group)
                    done_tokens += sum(c.n_tokens for c in group)
                    embedded(0)  # the step's tokens count once the whole step is embedded
                if pending:
                    _finish(pending, report)
                    pending = None
            finally:
                if pending:  # interrupted: let the step in flight land, so its papers count as done
                    pending[0].exception()


def _finish(pending: tuple[Future[int], list[Chunk]], report: IngestReport) -> None:
    future, group = pending
    report.chunks_removed += future.result()
    report.chunks_added += len(group)
    report.tokens_embedded += sum(c.n_tokens for c in group)


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


def ingest(
    paths: Iterable[str | Path] | str | Path,
    collection: str | None = None,
    settings: Settings | None = None,
    progress: bool | None = None,
) -> IngestReport:
    """Ingest files, folders or corpus records into a collection; ``progress`` shows bars on stderr
    (default: when stderr is a terminal).

    >>> report = ingest("papers/", collection="demo")   # doctest: +SKIP
    >>> report.papers_added, report.failed               # doctest: +SKIP
    (12, [])
    """
    from rag.progress import ingest_bars

    if isinstance(paths, (str, Path)):
        paths = [paths]
    indexer = Indexer(Store(settings))
    with ingest_bars(sys.stderr.isatty() if progress is None else progress) as on_progress:
        return indexer.ingest(paths, collection=collection, on_progress=on_progress)
