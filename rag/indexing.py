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
from itertools import chain, islice
from pathlib import Path
from typing import Any

from rag.chunk import SET_APART, chunk_paper, paper_hash
from rag.embed import make_embedder
from rag.errors import InputError
from rag.lexical import LexicalIndex, open_lexical
from rag.pdf.reader import READER_VERSION
from rag.read import PDF_SUFFIXES, collect_files, file_doc_id, read_many
from rag.settings import Settings
from rag.sidecar import SidecarRecord, apply, match
from rag.store import Store, check_collection_name
from rag.types import Chunk, Embedder, IngestProgress, IngestReport, InputFailure, Paper, PaperInfo

OnProgress = Callable[[IngestProgress], None]
_PLAN_BATCH = 256  # papers looked up in the store at once to decide what is new (one query each)


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
        tell = on_progress or (lambda _: None)
        self._store(name, self._read(name, paths, report, tell, sidecar), report, tell)
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
        seen: dict[str, str] = {}
        unique = (p for paper in papers if (p := self._take(paper, seen, report, (), None)))
        self._store(name, unique, report, on_progress or (lambda _: None))
        report.seconds = time.perf_counter() - started
        return report

    def _store(self, name: str, papers: Iterable[Paper], report: IngestReport, on_progress: OnProgress) -> None:
        """Embed and write papers as they arrive (reading goes on meanwhile), in steps of whole papers."""
        stream = iter(papers)
        first = next(stream, None)
        if first is None:
            return
        embedder = make_embedder(self.settings)
        col = self.store.collection_for_write(name, embedder)
        groups = self._groups(col, chain([first], stream), report)
        self._embed_and_write(col, groups, embedder, report, on_progress)

    def _groups(self, col: Any, papers: Iterator[Paper], report: IngestReport) -> Iterator[list[Chunk]]:
        """Steps of about ``group_chunks`` chunks of the papers that need (re)embedding, never splitting a
        paper (so a step completes whole papers); papers are planned in batches (one look-up each)."""
        size, group = self.settings.ingest.group_chunks, list[Chunk]()
        while batch := list(islice(papers, _PLAN_BATCH)):
            for paper in self._plan(col, batch, report):
                group += self._chunks(paper)
                if len(group) >= size:
                    yield group
                    group = []
        if group:
            yield group

    def lexical(self, name: str) -> LexicalIndex:
        """The collection's lexical index (the one the configured retrieval settings read)."""
        return open_lexical(self.settings, name)

    def write_step(self, col: Any, lexical: LexicalIndex, group: list[Chunk], vectors: Any) -> int:
        """One step into both indexes, under the lexical writer lock (so steps of two writers never
        interleave): the lexical index first — a crash then leaves it a superset, which readers skip —
        then Chroma, then the revision both now match. Returns the stale chunks removed."""
        with lexical.writer() as lex:
            assert lex is not None  # a waiting writer always gets the lock (or raises)
            level = self._is_level(col, lexical)
            stale = self.store.stale_ids(col, group)
            lex.add(group)
            lex.delete(stale)
            lex.commit()
            self.store.write_chunks(col, group, vectors)
            self.store.delete_ids(col, stale)
            revision = self.store.bump_revision(col)
            if level:  # an index that was behind stays marked so: its next reader brings it level
                lex.record(revision)
        return len(stale)

    def _is_level(self, col: Any, lexical: LexicalIndex) -> bool:
        """Whether the lexical index matches the collection right now (both empty counts)."""
        if lexical.revision:
            return lexical.revision == self.store.revision(col.name)
        return col.count() == 0 and lexical.count() == 0

    def delete(self, doc_ids: Sequence[str], collection: str | None = None) -> int:
        """Remove papers from Chroma and the lexical index together; returns the chunks removed."""
        name = collection or self.settings.collection
        col = self.store.collection(name)
        lexical = self.lexical(name)
        with lexical.writer() as lex:
            assert lex is not None
            level = self._is_level(col, lexical)
            ids = self.store.paper_chunk_ids(col, doc_ids)
            lex.delete_papers(list(doc_ids))
            lex.commit()
            self.store.delete_ids(col, ids)
            revision = self.store.bump_revision(col) if ids else ""
            if revision and level:
                lex.record(revision)
        return len(ids)

    def _chunks(self, paper: Paper) -> list[Chunk]:
        """The paper's chunks; the first carries what is stored once per paper (report, references,
        declarations)."""
        chunks = chunk_paper(paper, self.settings.chunk)
        digest = str(paper.meta.get("source_sha", ""))
        for chunk in chunks:
            chunk.source_sha = digest
        apart = [s for s in paper.sections if s.kind in SET_APART]
        if chunks and (paper.report or paper.references or paper.arxiv_id or apart):
            info = PaperInfo(
                arxiv_id=paper.arxiv_id,
                sections=[s.title for s in paper.sections if s.kind in ("body", *SET_APART) and s.title],
                references=paper.references,
                report=paper.report,
                declarations=apart,
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
    ) -> Iterator[Paper]:
        """The papers of the inputs as they are read (PDFs in reading processes), each doc id once."""
        files, errors = collect_files(paths)
        report.files = len(files)
        report.failed.extend(_failure(e) for e in errors)
        shas = self._source_shas(files)
        # with sidecar metadata given, every file is read again: its metadata may be new or corrected
        unchanged = set() if sidecar else self._unchanged(name, shas)
        report.papers_unchanged += len(unchanged)
        todo = [f for f in files if f not in unchanged]
        ingest, seen = self.settings.ingest, dict[str, str]()
        on_progress(IngestProgress(stage="read", done=len(unchanged), total=len(files)))
        for done, (path, items) in enumerate(
            read_many(todo, ingest.encoding, ingest.ocr, ingest.workers()), start=len(unchanged) + 1
        ):
            for item in items:
                paper = self._take(item, seen, report, sidecar, shas.get(path))
                if paper is not None:
                    yield paper
            on_progress(IngestProgress(stage="read", done=done, total=len(files)))

    @staticmethod
    def _take(
        item: Paper | InputError,
        seen: dict[str, str],
        report: IngestReport,
        sidecar: Sequence[SidecarRecord],
        source_sha: str | None,
    ) -> Paper | None:
        """The paper to store, or None (a failure or a repeated doc id, noted in the report);
        ``seen`` maps each doc id taken to where it was read."""
        if isinstance(item, InputError):
            report.failed.append(_failure(item))
            return None
        if item.doc_id in seen:
            reason = f"doc_id {item.doc_id!r} already read from {seen[item.doc_id]}"
            report.skipped.append(InputFailure(source=item.source, error="DuplicateDocId", reason=reason))
            return None
        record = match(item, sidecar) if sidecar else None
        paper = apply(item, record) if record else item
        if source_sha:
            paper.meta["source_sha"] = source_sha
        if paper.report:
            report.documents.append(paper.report)
        seen[paper.doc_id] = paper.source
        return paper

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
        self, col: Any, groups: Iterator[list[Chunk]], embedder: Embedder, report: IngestReport, on_progress: OnProgress
    ) -> None:
        total = done = total_tokens = done_tokens = 0  # totals grow as papers are read
        lexical = self.lexical(col.name)

        def embedded(n: int) -> None:
            nonlocal done
            done += n
            event = IngestProgress(
                stage="embed", done=done, total=total, tokens_done=done_tokens, tokens_total=total_tokens
            )
            on_progress(event)

        # Writing step k overlaps embedding step k+1 (ONNX Runtime releases the GIL); reading processes
        # fill the next steps meanwhile.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-write") as writer:
            pending: tuple[Future[int], list[Chunk]] | None = None
            try:
                for group in groups:
                    total += len(group)
                    total_tokens += sum(c.n_tokens for c in group)
                    vectors = embedder.embed([embedding_text(c) for c in group], progress=embedded)
                    if pending:
                        _finish(pending, report)
                    pending = (writer.submit(self.write_step, col, lexical, group, vectors), group)
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
