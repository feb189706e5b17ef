"""The `rag` command line: ingest, find, stats, delete, search, ask, eval, serve, demo.

Exit codes: 0 success; 1 some inputs failed (the rest was stored); 2 a usage or fatal error;
3 (`rag find`) no literature service could be reached.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rag.errors import ConfigError, RagError
from rag.settings import PRESETS, Settings
from rag.terminal import Working, estimate_table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Cited answers from a corpus of scientific papers.")
out = Console()
err = Console(stderr=True)

CollectionOpt = Annotated[
    str | None, typer.Option("--collection", "-c", help="Collection name (default: RAG_COLLECTION or 'papers').")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
YearMinOpt = Annotated[int | None, typer.Option(help="Earliest publication year.")]
YearMaxOpt = Annotated[int | None, typer.Option(help="Latest publication year.")]
DocIdOpt = Annotated[list[str] | None, typer.Option("--doc-id", help="Only these papers (repeatable).")]
PresetOpt = Annotated[str | None, typer.Option("--preset", help=f"Settings preset: {', '.join(PRESETS)}.")]


def _settings(preset: str | None) -> Settings:
    return Settings.preset(preset) if preset else Settings()


def _fail(exc: RagError) -> None:
    err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(2)


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders: PDF, .txt, .md, .jsonl/.json records.")
    ] = None,
    collection: CollectionOpt = None,
    preset: PresetOpt = None,
    as_json: JsonOpt = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
    ocr: Annotated[bool, typer.Option("--ocr", help="Read image-only PDFs with Tesseract.")] = False,
    bib: Annotated[
        list[Path] | None, typer.Option("--bib", help="BibTeX or CSL-JSON file whose metadata wins (repeatable).")
    ] = None,
    zotero: Annotated[
        Path | None, typer.Option("--zotero", help="Zotero data folder: its PDFs and their metadata.")
    ] = None,
) -> None:
    """Read, chunk, embed and store papers. Re-running adds only what is new or changed."""
    try:
        settings = _settings(preset)
        if ocr:
            settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"ocr": True})})
        paths, records = _with_sidecars(paths or [], bib or [], zotero)
        report = _ingest(paths, collection, settings, progress, records)
    except RagError as exc:
        _fail(exc)
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        table = Table(title=f"Ingest into {report.collection!r}", show_header=False)
        for label, value in [
            ("files", report.files),
            ("papers added", report.papers_added),
            ("papers updated", report.papers_updated),
            ("papers unchanged", report.papers_unchanged),
            ("chunks written", report.chunks_added),
            ("stale chunks removed", report.chunks_removed),
            ("tokens embedded", f"{report.tokens_embedded:,}"),
            ("skipped", len(report.skipped)),
            ("failed", len(report.failed)),
            ("seconds", f"{report.seconds:.1f}"),
        ]:
            table.add_row(label, str(value))
        err.print(table)
        for doc in report.documents:
            for warning in doc.warnings:
                err.print(f"[yellow]warning[/] {doc.source}: {warning}")
        for item in report.skipped[:20]:
            err.print(f"[yellow]skipped[/] {item.source}: {item.reason}")
        for item in report.failed[:50]:
            err.print(f"[red]failed[/] {item.source}: [bold]{item.error}[/] {item.reason}")
        if len(report.failed) > 50:
            err.print(f"... and {len(report.failed) - 50} more failures (use --json for all)")
    if report.failed:
        raise typer.Exit(1)


def _with_sidecars(paths: list[Path], bib: list[Path], zotero: Path | None) -> tuple[list[Path], list[Any]]:
    """The inputs plus a Zotero library's PDFs, and the metadata records of the BibTeX/CSL files and the library."""
    from rag.sidecar import read_sidecar, zotero_library

    records = [r for b in bib for r in read_sidecar(b)]
    if zotero is not None:
        library = zotero_library(zotero)
        records += library
        paths = [*paths, *(f for r in library for f in r.files if f.suffix.lower() == ".pdf" and f.is_file())]
    if not paths:
        raise ConfigError("Nothing to ingest: give files or folders, or --zotero.")
    return paths, records


def _ingest(paths: list[Path], collection: str | None, settings: Settings, progress: bool, sidecar: Any = ()) -> Any:
    from rag.indexing import Indexer
    from rag.progress import ingest_bars
    from rag.store import Store

    with ingest_bars(progress) as on_progress:
        return Indexer(Store(settings)).ingest(paths, collection=collection, on_progress=on_progress, sidecar=sidecar)


@app.command()
def stats(
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List collections with their paper and chunk counts."""
    from rag.store import Store

    try:
        store = Store(Settings())
        rows = store.stats(collection)
    except RagError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps({"location": store.location, "collections": [r.model_dump() for r in rows]}, indent=2))
        return
    table = Table(title=f"Collections in {store.location}")
    for col in ("collection", "papers", "chunks", "embedder"):
        table.add_column(col, justify="right" if col in {"papers", "chunks"} else "left")
    for r in rows:
        table.add_row(r.name, f"{r.papers:,}", f"{r.chunks:,}", r.embedder)
    out.print(table if rows else "No collections yet: `rag ingest PATH` creates one.")


@app.command()
def delete(
    doc_ids: Annotated[
        list[str] | None, typer.Argument(help="Papers to remove; none with --all removes the collection.")
    ] = None,
    collection: CollectionOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Delete the whole collection.")] = False,
) -> None:
    """Remove papers from a collection, or the collection itself."""
    from rag.store import Store

    try:
        store = Store(Settings())
        name = collection or store.settings.collection
        if all_:
            store.delete_collection(name)
            err.print(f"Deleted collection {name!r}.")
        elif doc_ids:
            from rag.indexing import Indexer

            removed = Indexer(store).delete(doc_ids, name)
            err.print(f"Removed {removed} chunks of {len(doc_ids)} paper(s) from {name!r}.")
        else:
            err.print("Nothing to delete: give DOC_IDs or --all.")
            raise typer.Exit(2)
    except RagError as exc:
        _fail(exc)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("--k", "-k", help="Evidence chunks to return.")] = 10,
    collection: CollectionOpt = None,
    year_min: YearMinOpt = None,
    year_max: YearMaxOpt = None,
    doc_id: DocIdOpt = None,
    system: Annotated[str, typer.Option(help="hybrid, bm25 or dense.")] = "hybrid",
    as_json: JsonOpt = False,
) -> None:
    """Ranked evidence for a query (hybrid dense + BM25 by default)."""
    from rag.retrieve import Retriever
    from rag.types import Filters

    if system not in ("hybrid", "bm25", "dense"):
        err.print(f"[bold red]error:[/] unknown system {system!r}; choose hybrid, bm25 or dense")
        raise typer.Exit(2)
    try:
        filters = Filters(year_min=year_min, year_max=year_max, doc_ids=doc_id)
        hits = Retriever(Settings(), collection=collection).search(query, k=k, filters=filters, system=system)  # type: ignore[arg-type]
    except RagError as exc:
        _fail(exc)
    if as_json:
        rows = [
            {
                "rank": e.rank,
                "doc_id": e.chunk.doc_id,
                "chunk_id": e.chunk.chunk_id,
                "score": round(e.score, 6),
                "dense_score": e.dense_score,
                "bm25_score": e.bm25_score,
                "title": e.chunk.title,
                "year": e.chunk.year,
                "section": e.chunk.section,
                "page_start": e.chunk.page_start,
                "page_end": e.chunk.page_end,
                "text": e.chunk.text,
            }
            for e in hits
        ]
        print(json.dumps({"query": query, "system": system, "hits": rows}, indent=2, ensure_ascii=False))
        return
    if not hits:
        out.print("No evidence found.")
    for e in hits:
        scores = " ".join(
            f"{name} {value:.3f}"
            for name, value in (("dense", e.dense_score), ("bm25", e.bm25_score))
            if value is not None
        )
        out.print(
            f"[bold]{e.rank}.[/] {e.chunk.doc_id} · {e.chunk.title or '(untitled)'} · score {e.score:.3f} ({scores})"
        )
        out.print(f"   {e.chunk.text[:300]}{'…' if len(e.chunk.text) > 300 else ''}")


@app.command()
def papers(collection: CollectionOpt = None, as_json: JsonOpt = False) -> None:
    """The papers a collection holds: metadata, sections, pages, reading warnings."""
    from rag.store import Store
    from rag.types import PaperInfo

    try:
        firsts = list(Store(Settings()).papers(collection))
    except RagError as exc:
        _fail(exc)
    rows: list[dict[str, Any]] = []
    for c in firsts:
        try:
            info = PaperInfo.model_validate_json(c.paper_info) if c.paper_info else PaperInfo()
        except ValueError:  # written by another version: show the paper without it
            info = PaperInfo()
        report = info.report
        rows.append(
            {
                "doc_id": c.doc_id, "title": c.title, "authors": c.authors, "year": c.year, "doi": c.doi,
                "arxiv_id": info.arxiv_id, "source": c.source, "chunks": c.n_chunks, "sections": info.sections,
                "pages": report.pages if report else None, "references": len(info.references),
                "declarations": [d.title for d in info.declarations],
                "warnings": report.warnings if report else [],
            }
        )  # fmt: skip
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"Papers in {collection or Settings().collection!r} ({len(rows)})")
    for col in ("doc_id", "title", "year", "pages", "chunks", "refs", "warnings"):
        table.add_column(col)
    for r in rows:
        warn = "; ".join(r["warnings"])
        table.add_row(
            r["doc_id"],
            r["title"][:60],
            str(r["year"] or ""),
            str(r["pages"] or ""),
            str(r["chunks"]),
            str(r["references"]),
            warn,
        )
    out.print(table)


@app.command()
def export(
    collection: CollectionOpt = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per chunk (the only format).")] = True,
) -> None:
    """Every chunk of a collection with its metadata, as JSON lines on stdout."""
    from rag.store import Store

    try:
        for chunk in Store(Settings()).iter_chunks(collection):
            print(chunk.model_dump_json(exclude={"paper_info"} if not chunk.paper_info else None))
    except RagError as exc:
        _fail(exc)


@app.command(name="eval")
def eval_(
    corpus: Annotated[list[Path], typer.Option("--corpus", help="Corpus file(s) to ingest (repeatable).")],
    questions: Annotated[Path, typer.Option("--questions", help="Questions JSONL (shared format).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (the store is kept there and reused).")],
    what: Annotated[
        str, typer.Option("--what", help="Comma-separated parts: retrieval, answer, checker, decision.")
    ] = "retrieval",
    limit: Annotated[int | None, typer.Option("--limit", help="Evaluate a seeded sample of N questions.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling / bootstrap seed.")] = 0,
    compare_to: Annotated[
        Path | None, typer.Option("--compare", help="An earlier run's OUT folder: print what changed.")
    ] = None,
    estimate: Annotated[
        bool, typer.Option("--estimate", help="Print the model calls, tokens and cost the answers would take.")
    ] = False,
) -> None:
    """Evaluate against gold questions; writes OUT/report.json, OUT/report.md, results and PNG plots."""
    try:  # the eval's libraries (ir-measures, rouge-score, matplotlib) are an extra, not a runtime need
        from evals import compare
        from evals.run import run_eval
    except ImportError as exc:
        hint = escape(f"`rag eval` needs the eval extra ({exc}): pip install -e '.[eval]'")
        err.print(f"[bold red]error:[/] {hint}")
        raise typer.Exit(2) from None

    try:
        if compare_to is not None and not (compare_to / "report.json").exists():
            raise ConfigError(f"--compare {compare_to}: no report.json there (an earlier `rag eval --out` folder).")
        if estimate:
            from evals.run import estimate_eval

            out.print(estimate_table(estimate_eval(corpus, questions, out_dir, limit, seed)))
            return
        report = run_eval(corpus, questions, out_dir, [w.strip() for w in what.split(",") if w.strip()], limit, seed)
        out.print((out_dir / "report.md").read_text())
        if compare_to is not None:
            out.print(compare.markdown(compare.compare(compare_to, out_dir), compare_to, out_dir))
    except RagError as exc:
        _fail(exc)
    out.print(f"[dim]wrote {out_dir / 'report.json'} ({report['meta']['seconds']} s)[/]")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Serve an OpenAI-compatible API (/v1/chat/completions, /v1/models, /v1/answer)."""
    from rag.server import serve as run_server

    run_server(host, port)


DEMO_QUESTION = "Can vitamin D reverse osteoporosis?"


@app.command()
def demo(
    question: Annotated[str, typer.Option(help="Question to answer.")] = DEMO_QUESTION,
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection for the demo corpus.")] = "demo",
) -> None:
    """Ingest SciFact + PubMedQA (local copies, or verified downloads) and answer a question, offline."""
    from rag.datasets import corpus_path
    from rag.pipeline import answer
    from rag.store import Store

    try:
        settings = Settings()
        store = Store(settings)
        corpora = [
            corpus_path(name, settings.cache_dir / "datasets", data_dir=settings.data_dir)
            for name in ("scifact", "pubmedqa")
        ]
        err.print(f"[bold]Corpora:[/] {', '.join(str(c) for c in corpora)}")
        err.print(f"[bold]Store:[/] {store.location} (collection {collection!r})")
        report = _ingest(list(corpora), collection, settings, progress=True)
        err.print(
            f"Ingested {report.papers_added:,} new papers ({report.chunks_added:,} chunks; "
            f"{report.papers_unchanged:,} already stored) in {report.seconds:.1f} s; {len(report.failed)} failed."
        )
        stats = store.stats(collection)[0]
        err.print(f"[bold]{stats.name}[/]: {stats.papers:,} papers, {stats.chunks:,} chunks ({stats.embedder})\n")
        result = answer(question, collection=collection, settings=settings)
    except RagError as exc:
        _fail(exc)
    _print_answer(result)


def _print_answer(result: Any) -> None:
    from rich.markdown import Markdown

    out.print(Markdown(result.markdown))
    secs = ", ".join(f"{k} {v:.2f}s" for k, v in result.usage.seconds.items())
    err.print(
        f"[dim]drafter {result.drafter} · {len(result.sources)} sources · {result.usage.llm_calls} LLM calls · {secs}[/]"
    )


SourceOpt = Annotated[
    str | None,
    typer.Option("--source", help="Services, comma-separated: pubmed, europepmc, openalex, arxiv, crossref."),
]
MaxOpt = Annotated[int | None, typer.Option("--max", help="Records per service (default RAG_FIND__MAX_RESULTS).")]
SinceOpt = Annotated[int | None, typer.Option("--since", help="Only papers published in this year or later.")]
FullTextOpt = Annotated[bool, typer.Option("--full-text", help="Also fetch open-access full text.")]


def _find_request(
    query: str, ids: list[str], source: str | None, max_: int | None, since: int | None, full: bool
) -> Any:
    from rag.types import FindRequest

    sources = [s.strip() for s in source.split(",") if s.strip()] if source else None
    return FindRequest(query=query, ids=ids, sources=sources, max_results=max_, since=since, full_text=full)


def _run_find(request: Any, collection: str | None, progress: bool) -> Any:
    from rag.find import find

    return find(request, collection, progress=progress)


def _print_found(report: Any) -> None:
    table = Table(title=f"Found for {report.query!r} → {report.collection!r}")
    for col in ("service", "found", "requests", "cached", "seconds", "status"):
        table.add_column(col, justify="left" if col in ("service", "status") else "right")
    for t in report.sources:
        status = "unreachable" if t.unavailable else (t.error or "ok")
        table.add_row(t.source, str(t.found), str(t.requests), str(t.cached), f"{t.seconds:.1f}", escape(status))
    err.print(table)
    err.print(("[yellow]" if report.offline else "") + escape(report.note))
    for doc in report.retracted:
        err.print(f"[bold red]retracted[/] {doc}")
    for item in report.failed[:20]:
        err.print(f"[red]failed[/] {item.source}: [bold]{item.error}[/] {escape(item.reason)}")


@app.command()
def find(
    query: Annotated[str, typer.Argument(help="Search words (the services' own syntax works too).")] = "",
    ids: Annotated[
        list[str] | None, typer.Option("--id", help="Fetch by id: pmid:…, pmcid:PMC…, doi:…, arxiv:… (repeatable).")
    ] = None,
    source: SourceOpt = None,
    max_: MaxOpt = None,
    since: SinceOpt = None,
    full_text: FullTextOpt = False,
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Search PubMed, Europe PMC, OpenAlex and arXiv, and store what they find (retractions flagged)."""
    try:
        report = _run_find(_find_request(query, ids or [], source, max_, since, full_text), collection, progress)
    except RagError as exc:
        _fail(exc)
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        _print_found(report)
    if report.offline:
        raise typer.Exit(3)
    if report.failed or any(t.error for t in report.sources):
        raise typer.Exit(1)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your research question.")],
    collection: CollectionOpt = None,
    drafter: Annotated[str, typer.Option(help="auto (LLM if configured), llm, or extractive.")] = "auto",
    year_min: YearMinOpt = None,
    year_max: YearMaxOpt = None,
    doc_id: DocIdOpt = None,
    as_json: JsonOpt = False,
    plain: Annotated[bool, typer.Option("--plain", help="Print the raw Markdown instead of rendering it.")] = False,
    find_: Annotated[
        bool, typer.Option("--find", help="Search the literature services for the question first, then answer.")
    ] = False,
    source: SourceOpt = None,
    max_: MaxOpt = None,
    since: SinceOpt = None,
    full_text: FullTextOpt = False,
    estimate: Annotated[
        bool,
        typer.Option("--estimate", help="Print the model calls, tokens and cost an answer would take; ask nothing."),
    ] = False,
) -> None:
    """Answer a question with a sectioned, cited synthesis of the collection's papers."""
    from rag.pipeline import answer, pipeline_for
    from rag.types import Filters

    if drafter not in ("auto", "llm", "extractive"):
        err.print(f"[bold red]error:[/] unknown drafter {drafter!r}")
        raise typer.Exit(2)
    filters = Filters(year_min=year_min, year_max=year_max, doc_ids=doc_id)
    if estimate:
        try:
            settings = Settings()
            guess = pipeline_for(settings).estimate(question, collection=collection, settings=settings, filters=filters)
        except RagError as exc:
            _fail(exc)
        if as_json:
            print(guess.model_dump_json(indent=2))
        else:
            out.print(estimate_table(guess))
        return
    try:
        found = None
        if find_:  # no network: the one-line note says so and the answer comes from the local store
            found = _run_find(_find_request(question, [], source, max_, since, full_text), collection, not as_json)
            err.print(("[yellow]" if found.offline else "[dim]") + escape(found.note))
        with Working(err, enabled=not as_json) as working:
            result = answer(
                question, collection=collection, drafter=drafter, find=found, filters=filters, on_stage=working.stage
            )
    except RagError as exc:
        _fail(exc)
    if as_json:
        print(result.model_dump_json(indent=2))
    elif plain:
        print(result.markdown)
    else:
        _print_answer(result)


def main() -> None:  # pragma: no cover - console-script entry
    try:
        app()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: what was stored stays stored; run the same command again to resume.")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
