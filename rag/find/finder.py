"""A literature search from start to finish: ask each service (in parallel, each at its own rate),
group what they return into papers, ask Crossref about notices, fetch open full text when asked,
and store the papers in a collection through :class:`~rag.indexing.Indexer`."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from rag.errors import FindError, InputError, SourceUnavailableError
from rag.find.arxiv import ArXiv
from rag.find.base import SOURCES, Connector, Record
from rag.find.crossref import Crossref
from rag.find.europepmc import EuropePMC
from rag.find.http import Fetcher
from rag.find.merge import combine, doc_id, group, to_paper
from rag.find.openalex import OpenAlex
from rag.find.pubmed import PubMed
from rag.find.text import merge_notices
from rag.indexing import Indexer, OnProgress
from rag.settings import Settings
from rag.store import Store, check_collection_name
from rag.types import FindProgress, FindReport, FindRequest, InputFailure, Paper, SourceTally

OnFind = Callable[[FindProgress], None]
_CONNECTORS: dict[str, type] = {
    "pubmed": PubMed,
    "europepmc": EuropePMC,
    "openalex": OpenAlex,
    "arxiv": ArXiv,
}  # Crossref is built apart: it is asked about notices, which is not in the Connector protocol
_FULL_TEXT = ("europepmc", "arxiv")  # who has open full text: JATS by PMCID, PDFs of preprints
_ID = re.compile(r"^(pmid|pmcid|doi|arxiv):\S+$", re.IGNORECASE)
_NOTICE_THREADS = 4  # Crossref look-ups in flight; the Fetcher's rate limit still paces them


def _validate(request: FindRequest, settings: Settings) -> list[str]:
    names = request.sources or [s.strip() for s in settings.find.sources.split(",") if s.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise InputError("source", f"unknown service {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
    if not request.query.strip() and not request.ids:
        raise InputError("query", "is empty: give search words or identifiers (--id pmid:…, doi:…)")
    bad = [i for i in request.ids if not _ID.match(i)]
    if bad:
        raise InputError("id", f"{bad[0]!r} is not one of pmid:…, pmcid:PMC…, doi:10.…, arxiv:…")
    return list(dict.fromkeys(names))


class Finder:
    """Searches the services for one store, each service through its own :class:`Fetcher` (rate, cache)."""

    def __init__(self, store: Store) -> None:
        self.store, self.settings = store, store.settings

    def find(
        self,
        request: FindRequest,
        collection: str | None = None,
        on_find: OnFind | None = None,
        on_progress: OnProgress | None = None,
    ) -> FindReport:
        """Search, dedupe, flag and store; every failure of a service is in the report, not raised."""
        started = time.perf_counter()
        names = _validate(request, self.settings)
        name = check_collection_name(collection or self.settings.collection)
        report = FindReport(query=request.query or " ".join(request.ids), collection=name)
        tell = on_find or (lambda _: None)
        needed = {*names, "crossref", *(_FULL_TEXT if request.full_text else ())}
        with ExitStack() as stack:
            fetchers = {n: stack.enter_context(Fetcher(n, self.settings.find, self._cache_dir())) for n in needed}
            connectors = {n: _CONNECTORS[n](fetchers[n], self.settings.find) for n in needed - {"crossref"}}
            connectors["crossref"] = crossref = Crossref(fetchers["crossref"], self.settings.find)
            records = self._search(request, [(connectors[n], fetchers[n]) for n in names], report, tell)
            merged = [combine(g) for g in group(records)]
            report.records, report.papers = len(records), len(merged)
            report.duplicates = len(records) - len(merged)
            if self.settings.find.crossref_check:
                self._notices(merged, crossref, tell)
            if request.full_text:
                merged = self._full_texts(merged, connectors, report, tell)
        papers = self._papers(merged, name, report)
        if papers:
            ingest = Indexer(self.store).add(papers, name, on_progress)
            report.new, report.updated, report.already_stored = (
                ingest.papers_added,
                ingest.papers_updated,
                ingest.papers_unchanged,
            )
            report.failed += ingest.failed
        report.note = _note(report)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _cache_dir(self) -> Path | None:
        return self.settings.find_cache if self.settings.find.cache else None

    def _search(
        self, request: FindRequest, pairs: Sequence[tuple[Connector, Fetcher]], report: FindReport, tell: OnFind
    ) -> list[Record]:
        """Every service at once (each paced by its own Fetcher); a failing service is reported, not raised."""
        limit = request.max_results or self.settings.find.max_results

        def run(pair: tuple[Connector, Fetcher]) -> tuple[list[Record], SourceTally]:
            connector, fetch = pair
            t0, tally = time.perf_counter(), SourceTally(source=connector.name)
            tell(FindProgress(stage="search", source=connector.name, done=0, total=1, detail="searching"))
            records: list[Record] = []
            try:
                if request.ids:
                    records += connector.lookup(request.ids)
                if request.query.strip():
                    records += connector.search(request.query, limit, request.since)
            except SourceUnavailableError as exc:
                tally.error, tally.unavailable = str(exc), True
            except FindError as exc:
                tally.error = str(exc)
            tally.found, tally.seconds = len(records), round(time.perf_counter() - t0, 3)
            tally.requests, tally.cached = fetch.sent, fetch.cached
            detail = "unreachable" if tally.unavailable else (f"failed: {tally.error}" if tally.error else "")
            tell(
                FindProgress(
                    stage="search", source=connector.name, done=1, total=1, detail=detail or f"{len(records)} found"
                )
            )
            return records, tally

        with ThreadPoolExecutor(max_workers=max(len(pairs), 1), thread_name_prefix="rag-find") as pool:
            results = list(pool.map(run, pairs))
        report.sources = [tally for _, tally in results]
        asked = [t for _, t in results if t.requests or t.error]  # a service given nothing it knows sends nothing
        report.offline = bool(asked) and all(t.unavailable for t in asked)
        return [r for records, _ in results for r in records]

    def _notices(self, merged: list[Record], crossref: Crossref, tell: OnFind) -> None:
        """Crossref's retraction, withdrawal and correction notices for every DOI it was not asked about."""
        todo = [r for r in merged if r.doi and "crossref" not in r.source.split("+")]
        unreachable = threading.Event()  # once Crossref cannot be reached, the other DOIs are not tried

        def ask(record: Record) -> None:
            if unreachable.is_set():
                return
            try:
                found = crossref.notices(record.doi or "")
            except SourceUnavailableError:
                unreachable.set()
                return
            except FindError:
                return  # a notice check that fails leaves the record as the services gave it
            record.notices = merge_notices(record.notices, found)
            record.retracted = record.retracted or any(n.retracts for n in found)

        with ThreadPoolExecutor(max_workers=_NOTICE_THREADS, thread_name_prefix="rag-notices") as pool:
            for done, _ in enumerate(pool.map(ask, todo), start=1):
                tell(FindProgress(stage="notices", done=done, total=len(todo)))

    def _full_texts(
        self, merged: list[Record], connectors: dict[str, Connector], report: FindReport, tell: OnFind
    ) -> list[Record]:
        """Open full text where Europe PMC (JATS, by PMCID) or arXiv (PDF) has it; the abstract otherwise."""
        out = []
        for done, record in enumerate(merged, start=1):
            full: Paper | None = None
            for name in _FULL_TEXT:
                if full is None:
                    try:
                        full = connectors[name].full_text(record)
                    except (FindError, InputError) as exc:
                        report.failed.append(InputFailure(source=record.key, error=type(exc).__name__, reason=str(exc)))
            out.append(record.model_copy(update={"full_text": full}) if full else record)
            report.full_texts += full is not None
            tell(FindProgress(stage="full_text", done=done, total=len(merged)))
        return out

    def _papers(self, merged: list[Record], collection: str, report: FindReport) -> list[Paper]:
        """Papers to store, under the id the collection already knows them by (matched by DOI)."""
        known = self.store.doc_ids_by_doi(collection, [r.doi for r in merged if r.doi])
        papers = []
        for record in merged:
            own_id = doc_id(record)
            paper = to_paper(record, known.get(record.doi or "") or own_id)
            if paper is None:
                report.no_text.append(own_id)
                continue
            papers.append(paper)
            report.doc_ids.append(paper.doc_id)
            if record.retracted:
                report.retracted.append(paper.doc_id)
        return papers


def _note(report: FindReport) -> str:
    if report.offline:
        names = ", ".join(t.source for t in report.sources if t.unavailable)
        return f"No network: {names} could not be reached; nothing was searched (the local store is unchanged)."
    failed = [f"{t.source} {'unreachable' if t.unavailable else 'failed'}" for t in report.sources if t.error]
    tail = f"; {', '.join(failed)}" if failed else ""
    return (
        f"{report.papers} papers from {report.records} records ({report.duplicates} duplicates merged): "
        f"{report.new} new, {report.already_stored} already stored, {report.updated} updated{tail}."
    )


def find(
    request: FindRequest | str,
    collection: str | None = None,
    settings: Settings | None = None,
    progress: bool | None = None,
) -> FindReport:
    """Search the literature services and store what they find; ``progress`` draws bars on stderr.

    >>> report = find("vitamin D osteoporosis", collection="vitd")   # doctest: +SKIP
    >>> report.new, report.retracted                                    # doctest: +SKIP
    (37, [])
    """
    import sys

    from rag.progress import find_bars

    req = FindRequest(query=request) if isinstance(request, str) else request
    with find_bars(sys.stderr.isatty() if progress is None else progress) as (on_find, on_progress):
        return Finder(Store(settings)).find(req, collection, on_find, on_progress)
