"""Lexical engines side by side: tantivy (``rag.lexical``) against SQLite FTS5, on the same chunks and terms.

Both engines index the very same terms per chunk, ``" ".join(analyze(bm25_text(title, text, 0)))``
(tantivy through :class:`rag.lexical.LexicalWriter`, FTS5 through a ``unicode61`` table set to split
on whitespace only), and both are queried with the same distinct query terms OR-ed together and
ranked by BM25 (k1 = 1.2, b = 0.75 in both; the idf formulas differ slightly, see ``Fts5Engine``).
Per size (the SciFact chunks, then the chunks replicated x13, about 100k) it measures build time,
size on disk, open time in a fresh process, paper-level nDCG@10 / recall@100, warm query latency
(plain and with a year filter), adding and deleting 1,000 chunks with a commit, whether a reader in
another process sees commits without reopening, and what a reader and a second writer meet while a
write transaction is open.

    python benchmarks/lexical_engines.py [--home /work/evalout/tantivy-after/store] [--json out.json]

SciFact papers carry no year, so each paper gets a synthetic one, 1990-2020 from a hash of its id
(the same in both engines): ``year >= 2010`` keeps about a third of the chunks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.lexical import LexicalIndex, LexicalWriter, analyze, bm25_text  # noqa: E402
from rag.types import Chunk, Filters  # noqa: E402

DEFAULT_HOME = Path("/work/evalout/tantivy-after/store")
CORPUS = Path("/work/shared/data/scifact/corpus.jsonl")
QUESTIONS = Path("/work/shared/data/scifact/questions.jsonl")
K = 100  # chunk candidates per query, as the retriever fetches (RetrieveSettings.candidates)
YEAR_MIN = 2010  # the filter tried: synthetic years 1990-2020 -> 11/31 of the papers pass
N_CHANGE = 1000  # chunks added, then deleted, by the incremental test
REPLICAS = 13  # 7,700 SciFact chunks x 13 = 100,100 chunks for the scale test
WARMUP = 50  # untimed queries before each timed pass (page cache, tantivy's mmap, sqlite's cache)


# -- data ------------------------------------------------------------------------------------------
def synthetic_year(doc_id: str) -> int:
    return 1990 + int(hashlib.md5(doc_id.encode()).hexdigest(), 16) % 31


def find_home(folder: Path) -> Path | None:
    """The RAG_HOME inside an eval output folder: the folder that holds ``chroma``."""
    for cand in [folder, *sorted(p.parent for p in folder.rglob("chroma") if p.is_dir())]:
        if (cand / "chroma").is_dir():
            return cand
    return None


def load_chunks(home: Path | None, work: Path) -> tuple[list[Chunk], str]:
    """The stored SciFact chunks (built into ``work`` from the corpus when no store is there)."""
    from rag.settings import Settings
    from rag.store import Store

    found = find_home(home) if home and home.exists() else None
    if found is None:
        from rag.indexing import Indexer

        found = work / "built-store"
        print(f"no store under {home}; building one from {CORPUS} (~2 min)", file=sys.stderr)
        Indexer(Store(Settings(home=found))).ingest([CORPUS], collection="scifact")
    store = Store(Settings(home=found))
    names = store.list_collections()
    name = "eval" if "eval" in names else names[0]
    chunks = [c.model_copy(update={"year": synthetic_year(c.doc_id)}) for c in store.iter_chunks(name)]
    return chunks, f"{found} (collection {name!r})"


def replicate(chunks: Sequence[Chunk], tag: str, copies: int = 1) -> list[Chunk]:
    """Copies of ``chunks`` under new chunk and paper ids (the paper keeps its synthetic year)."""
    return [
        c.model_copy(update={"chunk_id": f"{c.chunk_id}-{tag}{r}", "doc_id": f"{c.doc_id}#{tag}{r}"})
        for r in range(copies)
        for c in chunks
    ]


def load_questions(path: Path) -> list[dict[str, Any]]:
    """Questions with gold papers (555 of SciFact's 884 claims; the rest are NOT_ENOUGH_INFO)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    return [r for r in rows if r.get("gold_doc_ids")]


def chunk_terms(c: Chunk) -> str:
    """What both engines index for a chunk (title weight 0, as the default retriever)."""
    return " ".join(analyze(bm25_text(c.title, c.text, 0)))


# -- engines ---------------------------------------------------------------------------------------
class TantivyEngine:
    """The project's index: :class:`LexicalIndex` / :class:`LexicalWriter`, as the retriever uses them."""

    name = "tantivy"

    def __init__(self, folder: Path) -> None:
        self.folder = self.path = folder
        self.index = LexicalIndex(folder, title_weight=0)
        self._cm: AbstractContextManager[LexicalWriter | None] | None = None
        self._w: LexicalWriter | None = None

    def begin(self) -> None:
        self._cm = self.index.writer()
        self._w = self._cm.__enter__()  # the writer lock (one writer across processes)

    def stage_add(self, chunks: Iterable[Chunk]) -> None:
        assert self._w is not None
        self._w.add(chunks)  # analyzes each chunk: delete-by-id + add, like the project's writes

    def stage_delete(self, chunk_ids: Sequence[str]) -> None:
        assert self._w is not None
        self._w.delete(chunk_ids)

    def commit(self) -> None:
        assert self._w is not None
        self._w.commit()

    def end(self) -> None:
        assert self._cm is not None
        self._cm.__exit__(None, None, None)  # waits for tantivy's background merges, frees the lock
        self._cm = self._w = None

    def try_write(self) -> str:
        with self.index.writer(wait=False) as w:
            return "acquired" if w is not None else "busy (writer lock held elsewhere)"

    def search(self, query: str, k: int, year_min: int | None = None) -> list[tuple[str, float]]:
        filters = Filters(year_min=year_min) if year_min is not None else None
        return [(h.chunk_id, h.score) for h in self.index.search(query, k, filters)]

    def count(self) -> int:
        return self.index.count()

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())

    def segments(self) -> int:
        self.index.index.reload()
        return int(self.index.index.searcher().num_segments)

    def close(self) -> None:
        del self.index


_FTS5_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL,
    year INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    body, content='chunks', content_rowid='id',
    tokenize="unicode61 remove_diacritics 0 tokenchars '_'");
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO fts(rowid, body) VALUES (new.id, new.body); END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO fts(fts, rowid, body) VALUES ('delete', old.id, old.body); END;
"""
# Ranked in one statement: FTS5 scores every row the OR matches, the join reads the id, the sorter
# keeps the best k. bm25() is negative (lower is better), so it is negated into a score.
_FTS5_SEARCH = (
    "SELECT c.chunk_id, -bm25(fts) FROM fts JOIN chunks c ON c.id = fts.rowid "
    "WHERE fts MATCH ? {where} ORDER BY bm25(fts) LIMIT ?"
)


class Fts5Engine:
    """SQLite FTS5 over the pre-analysed terms: an external-content table (``chunks`` keeps the terms,
    ids and year; triggers keep ``fts`` in step), WAL mode, durable commits (synchronous=FULL, as
    tantivy fsyncs its commits). The ``unicode61`` options keep the terms as they are: no diacritic
    folding, ``_`` a word character, so whitespace is the only separator (what tantivy's is).

    FTS5's bm25: k1 = 1.2, b = 0.75 like tantivy, but idf = ln((N - n + .5) / (n + .5)) (floored at
    1e-6) where tantivy's is ln(1 + (N - n + .5) / (n + .5)): terms in half the chunks or more weigh
    about nothing in FTS5. Tantivy also stores chunk lengths lossily (one byte), FTS5 exactly.
    """

    name = "fts5"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # explicit BEGINs
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=600000")  # a writer waits for another, as tantivy's does
        # Memory-mapped reads, as tantivy's: SQLite's default 2 MB page cache re-reads pages through
        # read() calls; on 31k chunks this took p50 from ~32 to ~25 ms (a 256 MB cache_size did the same).
        self.db.execute("PRAGMA mmap_size=1073741824")
        self.db.executescript(_FTS5_SCHEMA)

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")  # takes the write lock now, as tantivy's writer does

    def stage_add(self, chunks: Iterable[Chunk]) -> None:
        rows = [(c.chunk_id, c.doc_id, c.year if c.year is not None else -1, chunk_terms(c)) for c in chunks]
        self.db.executemany("DELETE FROM chunks WHERE chunk_id = ?", [(r[0],) for r in rows])  # replace, like tantivy
        self.db.executemany("INSERT INTO chunks(chunk_id, doc_id, year, body) VALUES (?, ?, ?, ?)", rows)

    def stage_delete(self, chunk_ids: Sequence[str]) -> None:
        self.db.executemany("DELETE FROM chunks WHERE chunk_id = ?", [(cid,) for cid in chunk_ids])

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def end(self) -> None:
        pass

    def try_write(self) -> str:
        other = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return "acquired"
        except sqlite3.OperationalError as exc:
            return f"busy ({exc})"
        finally:
            other.close()

    def search(self, query: str, k: int, year_min: int | None = None) -> list[tuple[str, float]]:
        terms = list(dict.fromkeys(analyze(query)))
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)  # terms are \w+: nothing to escape
        if year_min is None:
            return self.db.execute(_FTS5_SEARCH.format(where=""), (match, k)).fetchall()
        return self.db.execute(_FTS5_SEARCH.format(where="AND c.year >= ?"), (match, year_min, k)).fetchall()

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))

    def size_parts(self) -> dict[str, float]:
        """MB of the inverted index (``fts_*`` shadow tables) and of the content table with its indexes."""
        rows = self.db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        index = sum(n for name, n in rows if name.startswith("fts_"))
        content = sum(n for name, n in rows if name.startswith(("chunks", "sqlite_autoindex_chunks")))
        return {"fts_index_mb": index / 1e6, "fts_content_mb": content / 1e6}

    def checkpoint(self) -> None:
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # WAL pages into the database file

    def close(self) -> None:
        self.db.close()


Engine = TantivyEngine | Fts5Engine


def open_engine(name: str, path: Path) -> Engine:
    return TantivyEngine(path) if name == "tantivy" else Fts5Engine(path)


def engine_path(name: str, folder: Path) -> Path:
    return folder / ("tantivy" if name == "tantivy" else "fts5.sqlite3")


# -- the reader in another process ----------------------------------------------------------------
def child_main(name: str, path: Path, questions: Path) -> None:
    """A reader process: reports its open time, then answers commands on stdin, one JSON line each."""
    texts = [q["question"] for q in load_questions(questions)]
    analyze("warm up")  # loads the stemmer and bm25s's stop list, which are no part of an engine's open
    t0 = time.perf_counter()
    eng = open_engine(name, path)
    t1 = time.perf_counter()
    eng.search(texts[0], K)
    t2 = time.perf_counter()
    eng.search(texts[1], K)
    t3 = time.perf_counter()
    ms = 1000.0
    reply = {"open_ms": (t1 - t0) * ms, "first_query_ms": (t2 - t1) * ms, "second_query_ms": (t3 - t2) * ms}
    print(json.dumps({**reply, "count": eng.count()}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            return
        if cmd[0] == "count":
            out: dict[str, Any] = {"count": eng.count(), "query_ok": bool(eng.search(texts[2], K))}
        elif cmd[0] == "trywrite":
            out = {"second_writer": eng.try_write()}
        else:  # "loop SECONDS": query without pause, noting latencies, errors and the counts seen
            out = reader_loop(eng, texts, float(cmd[1]))
        print(json.dumps(out), flush=True)


def reader_loop(eng: Engine, texts: list[str], seconds: float) -> dict[str, Any]:
    lat, errors, counts = [], [], set()
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        try:
            eng.search(texts[i % len(texts)], K)
            lat.append((time.perf_counter() - t0) * 1000)
            if i % 5 == 0:
                counts.add(eng.count())
        except Exception as exc:  # any failure a reader meets while the writer works
            errors.append(f"{type(exc).__name__}: {exc}")
        i += 1
    return {
        "queries": len(lat),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "p50_ms": float(np.percentile(lat, 50)) if lat else None,
        "max_ms": max(lat) if lat else None,
        "counts_seen": sorted(counts),
    }


class Reader:
    """The parent's handle on a reader process."""

    def __init__(self, name: str, path: Path) -> None:
        cmd = [sys.executable, __file__, "--child", name, str(path), "--questions", str(QUESTIONS)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"reader process {self.proc.pid} ended (exit {self.proc.wait()})")
        return dict(json.loads(line))

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def ask(self, cmd: str) -> dict[str, Any]:
        self.send(cmd)
        return self._read()

    def close(self) -> None:
        self.send("quit")
        self.proc.wait(timeout=60)


def open_times(name: str, path: Path, runs: int = 3) -> dict[str, float]:
    """Median over fresh processes of: opening the index, its first query, its second query."""
    hellos = []
    for _ in range(runs):
        reader = Reader(name, path)
        hellos.append(reader.hello)
        reader.close()
    keys = ("open_ms", "first_query_ms", "second_query_ms")
    return {k: statistics.median(h[k] for h in hellos) for k in keys}


# -- measurements ---------------------------------------------------------------------------------
def now() -> float:
    return time.perf_counter()


def build(name: str, folder: Path, chunks: Sequence[Chunk], runs: int) -> tuple[Engine, dict[str, Any]]:
    """Index every chunk in one write and one commit, ``runs`` times from scratch (median time; the
    last index is kept); the time includes analysing the chunks (both engines analyse inside their
    add), tantivy's wait for its merges and FTS5's WAL checkpoint."""
    times = []
    for i in range(runs):
        sub = folder / f"{name}-build{i}"
        sub.mkdir()
        eng, took = build_once(name, sub, chunks)
        times.append(took)
        if i < runs - 1:
            eng.close()
            shutil.rmtree(sub)
    out: dict[str, Any] = {"build_s": statistics.median(times), "size_mb": eng.size_bytes() / 1e6, "count": eng.count()}
    if isinstance(eng, TantivyEngine):
        out["segments"] = eng.segments()
    else:
        out.update(eng.size_parts())
    return eng, out


def build_once(name: str, folder: Path, chunks: Sequence[Chunk]) -> tuple[Engine, float]:
    t0 = now()
    eng = open_engine(name, engine_path(name, folder))
    eng.begin()
    eng.stage_add(chunks)
    eng.commit()
    eng.end()
    if isinstance(eng, Fts5Engine):
        eng.checkpoint()
    return eng, now() - t0


def timed_queries(
    engines: Sequence[Engine], texts: Sequence[str], year_min: int | None, passes: int
) -> dict[str, tuple[list[float], list[list[tuple[str, float]]]]]:
    """Per engine: each query's median latency (ms) over ``passes`` timed passes, and its hits.

    The passes alternate between engines, so a burst of load from other work on the machine falls
    on both rather than on one."""
    lat: dict[str, list[list[float]]] = {e.name: [] for e in engines}
    hits: dict[str, list[list[tuple[str, float]]]] = {}
    for eng in engines:
        for q in texts[:WARMUP]:
            eng.search(q, K, year_min)
    for _ in range(passes):
        for eng in engines:
            times, got = [], []
            for q in texts:
                t0 = now()
                got.append(eng.search(q, K, year_min))
                times.append((now() - t0) * 1000)
            lat[eng.name].append(times)
            hits.setdefault(eng.name, got)
    return {n: (list(np.median(np.array(v), axis=0)), hits[n]) for n, v in lat.items()}


def paper_metrics(
    questions: Sequence[dict[str, Any]], hits: Sequence[list[tuple[str, float]]], doc_of: dict[str, str]
) -> dict[str, float]:
    """Paper-level nDCG@10 and recall@100 (papers ranked by their best chunk; gain 1 per gold paper),
    with ir-measures as ``evals/retrieval.py`` scores them."""
    import ir_measures
    from ir_measures import R, nDCG

    qrels = [ir_measures.Qrel(q["qid"], d, 1) for q in questions for d in q["gold_doc_ids"]]
    run = []
    for q, got in zip(questions, hits, strict=True):
        best: dict[str, float] = {}
        for cid, score in got:  # best first: the first chunk of a paper is its best
            best.setdefault(doc_of[cid], score)
        run += [ir_measures.ScoredDoc(q["qid"], d, s) for d, s in best.items()]
    agg = ir_measures.calc_aggregate([nDCG @ 10, R @ 100], qrels, run)
    return {"ndcg@10": float(agg[nDCG @ 10]), "recall@100": float(agg[R @ 100])}


def top10_overlap(a: Sequence[list[tuple[str, float]]], b: Sequence[list[tuple[str, float]]]) -> float:
    """Mean share of the 10 best chunks the two engines agree on (ranking ties aside)."""
    shares = [len({c for c, _ in x[:10]} & {c for c, _ in y[:10]}) / 10 for x, y in zip(a, b, strict=True) if x]
    return float(np.mean(shares))


def timed_write(eng: Engine, stage: Callable[[], None], between: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    """One write transaction, timed in ms: ``work`` (stage + commit), ``commit`` alone, ``total`` (with
    the writer's open and close); ``between()`` runs, untimed, while the transaction is open."""
    t0 = now()
    eng.begin()
    t1 = now()
    stage()
    t2 = now()
    seen = between()
    t3 = now()
    eng.commit()
    t4 = now()
    eng.end()
    t5 = now()
    work = (t2 - t1) + (t4 - t3)
    return {"work": work * 1000, "commit": (t4 - t3) * 1000, "total": (work + (t1 - t0) + (t5 - t4)) * 1000}, seen


def incremental(eng: Engine, reader: Reader, chunks: Sequence[Chunk], repeats: int) -> dict[str, Any]:
    """Add 1,000 new chunks + commit, then delete them by id + commit, ``repeats`` times (medians); a
    reader in another process, opened once, reports the count while each transaction is open and after."""
    c0 = reader.ask("count")["count"]
    adds, dels, checks = [], [], []
    for r in range(repeats):
        new = replicate(chunks[:N_CHANGE], f"add{r}-")
        ids = [c.chunk_id for c in new]
        probe = (lambda: (reader.ask("count"), reader.ask("trywrite"))) if r == 0 else (lambda: (None, None))
        add, (during_add, second) = timed_write(eng, lambda new=new: eng.stage_add(new), probe)
        after_add = reader.ask("count")
        dele, _ = timed_write(eng, lambda ids=ids: eng.stage_delete(ids), lambda: None)
        adds.append(add), dels.append(dele), checks.append((during_add, second, after_add, reader.ask("count")))
    during_add, second, _, _ = checks[0]
    out: dict[str, Any] = {"repeats": repeats}
    for prefix, runs in (("add", adds), ("delete", dels)):
        out[f"{prefix}_ms"] = statistics.median(t["work"] for t in runs)
        out[f"{prefix}_commit_ms"] = statistics.median(t["commit"] for t in runs)
        out[f"{prefix}_total_ms"] = statistics.median(t["total"] for t in runs)
    return {
        **out,
        "reader_during_open_txn": f"queries ok={during_add['query_ok']}, count {during_add['count'] - c0:+d}",
        "reader_after_commit": all(a["count"] == c0 + N_CHANGE for _, _, a, _ in checks),
        "reader_after_delete": all(d["count"] == c0 for _, _, _, d in checks),
        "second_writer": second["second_writer"],
    }


def concurrency(eng: Engine, reader: Reader, chunks: Sequence[Chunk], seconds: float = 3.0) -> dict[str, Any]:
    """The reader queries without pause while this process holds a write transaction open for a
    second, commits 1,000 chunks, then deletes them and commits again."""
    new = replicate(chunks[:N_CHANGE], "conc")
    reader.send(f"loop {seconds}")
    time.sleep(0.3)
    timed_write(eng, lambda: eng.stage_add(new), lambda: time.sleep(1.0))
    timed_write(eng, lambda: eng.stage_delete([c.chunk_id for c in new]), lambda: None)
    return reader._read()


def measure_size(
    label: str, chunks: Sequence[Chunk], questions: Sequence[dict[str, Any]], work: Path, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Every measurement of both engines on one set of chunks; quality and the concurrency test only
    on the real corpus (at x13 every paper has 12 identical twins, which ties the rankings)."""
    real = label == "scifact"
    folder = work / label
    folder.mkdir()
    engines, res = [], {}
    for name in ("tantivy", "fts5"):
        eng, res[name] = build(name, folder, chunks, args.repeats if real else 1)
        engines.append(eng)
        print(f"[{label}] {name}: built {res[name]['count']:,} chunks in {res[name]['build_s']:.1f} s", file=sys.stderr)
    for eng in engines:
        res[eng.name].update({f"open_{k}": v for k, v in open_times(eng.name, eng.path).items()})
    texts = [q["question"] for q in questions]
    passes = args.passes if real else args.scale_passes
    plain = timed_queries(engines, texts, None, passes)
    years = timed_queries(engines, texts, YEAR_MIN, passes)
    doc_of = {c.chunk_id: c.doc_id for c in chunks}
    for eng in engines:
        (lat, hits), (ylat, yhits) = plain[eng.name], years[eng.name]
        r = res[eng.name]
        r.update(p50_ms=float(np.percentile(lat, 50)), p95_ms=float(np.percentile(lat, 95)))
        r.update(year_p50_ms=float(np.percentile(ylat, 50)), year_p95_ms=float(np.percentile(ylat, 95)))
        r["year_hits_mean"] = float(np.mean([len(h) for h in yhits]))
        r["year_hits_ok"] = all(
            doc_of[c] and synthetic_year(doc_of[c].split("#")[0]) >= YEAR_MIN for h in yhits for c, _ in h
        )
        if real:
            r.update(paper_metrics(questions, hits, doc_of))
    if real:
        overlap = top10_overlap(plain["tantivy"][1], plain["fts5"][1])
        res["tantivy"]["top10_overlap"] = res["fts5"]["top10_overlap"] = overlap
    print(f"[{label}] queries done; incremental writes", file=sys.stderr)
    for eng in engines:
        reader = Reader(eng.name, eng.path)
        res[eng.name].update(incremental(eng, reader, chunks, args.repeats))
        if real:
            res[eng.name]["concurrency"] = concurrency(eng, reader, chunks)
        reader.close()
        res[eng.name]["size_after_changes_mb"] = eng.size_bytes() / 1e6  # FTS5: with its WAL file
        if isinstance(eng, Fts5Engine):
            eng.checkpoint()
            res[eng.name]["size_after_checkpoint_mb"] = eng.size_bytes() / 1e6
        eng.close()
    shutil.rmtree(folder)
    return res


# -- report ---------------------------------------------------------------------------------------
ROWS: list[tuple[str, str, str]] = [  # (label, result key, format)
    ("chunks", "count", "{:,}"),
    ("build, one commit (s, incl. analysis)", "build_s", "{:.2f}"),
    ("tantivy segments after build", "segments", "{}"),
    ("size on disk (MB)", "size_mb", "{:.1f}"),
    ("  FTS5: inverted index + doc lengths (MB)", "fts_index_mb", "{:.1f}"),
    ("  FTS5: chunks table (terms, ids, year) + its indexes (MB)", "fts_content_mb", "{:.1f}"),
    ("open in a fresh process (ms)", "open_open_ms", "{:.1f}"),
    ("first query after open (ms)", "open_first_query_ms", "{:.1f}"),
    ("second query after open (ms)", "open_second_query_ms", "{:.1f}"),
    ("nDCG@10, papers", "ndcg@10", "{:.4f}"),
    ("recall@100, papers (k=100 chunks)", "recall@100", "{:.4f}"),
    ("top-10 chunks shared by both", "top10_overlap", "{:.3f}"),
    ("query p50 (ms, limit 100)", "p50_ms", "{:.2f}"),
    ("query p95 (ms)", "p95_ms", "{:.2f}"),
    (f"year >= {YEAR_MIN}: p50 (ms)", "year_p50_ms", "{:.2f}"),
    (f"year >= {YEAR_MIN}: p95 (ms)", "year_p95_ms", "{:.2f}"),
    (f"year >= {YEAR_MIN}: hits per query / all in range", "year_hits", "{}"),
    ("add 1,000 + commit (ms)", "add_ms", "{:.0f}"),
    ("  with the writer's open and close (ms)", "add_total_ms", "{:.0f}"),
    ("  of which the commit (ms)", "add_commit_ms", "{:.0f}"),
    ("delete 1,000 by id + commit (ms)", "delete_ms", "{:.0f}"),
    ("  with the writer's open and close (ms)", "delete_total_ms", "{:.0f}"),
    ("  of which the commit (ms)", "delete_commit_ms", "{:.0f}"),
    ("size after the adds and deletes (MB)", "size_after_changes_mb", "{:.1f}"),
    ("  same, FTS5 after a WAL checkpoint (MB)", "size_after_checkpoint_mb", "{:.1f}"),
    ("reader in another process, write txn open", "reader_during_open_txn", "{}"),
    ("reader sees commits without reopening", "reader_after_commit", "{}"),
    ("reader sees deletes without reopening", "reader_after_delete", "{}"),
    ("second writer while one is open", "second_writer", "{}"),
]


def table(res: dict[str, dict[str, Any]]) -> str:
    lines = ["| | tantivy | FTS5 | tantivy/FTS5 |", "|---|---:|---:|---:|"]
    for r in res.values():
        r["year_hits"] = f"{r['year_hits_mean']:.1f} / {r['year_hits_ok']}"
    for label, key, fmt in ROWS:
        a, b = res["tantivy"].get(key), res["fts5"].get(key)
        if a is None and b is None:
            continue
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
        ratio = f"{a / b:.2f}" if numeric and b else ""
        cell = [fmt.format(v) if v is not None else "–" for v in (a, b)]
        lines.append(f"| {label} | {cell[0]} | {cell[1]} | {ratio} |")
    return "\n".join(lines)


def concurrency_table(res: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| reader, 3 s of back-to-back queries | tantivy | FTS5 |",
        "|---|---:|---:|",
    ]
    a, b = res["tantivy"]["concurrency"], res["fts5"]["concurrency"]
    for key, fmt in (("queries", "{}"), ("errors", "{}"), ("p50_ms", "{:.2f}"), ("max_ms", "{:.1f}")):
        lines.append(f"| {key} | {fmt.format(a[key])} | {fmt.format(b[key])} |")
    lines.append(f"| counts seen | {a['counts_seen']} | {b['counts_seen']} |")
    return "\n".join(lines)


def growth_table(small: dict[str, dict[str, Any]], big: dict[str, dict[str, Any]]) -> str:
    lines = ["| x13 / SciFact | tantivy | FTS5 |", "|---|---:|---:|"]
    for key in ("build_s", "size_mb", "p50_ms", "p95_ms", "year_p50_ms", "add_ms", "delete_ms"):
        cells = [f"{big[e][key] / small[e][key]:.1f}x" for e in ("tantivy", "fts5")]
        lines.append(f"| {key} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def environment(chunks: Sequence[Chunk], source: str) -> dict[str, Any]:
    import importlib.metadata

    t0 = now()
    for c in chunks:
        chunk_terms(c)
    t1 = now()
    for c in chunks[:N_CHANGE]:
        chunk_terms(c)
    return {
        "source": source,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "fts5": any("FTS5" in r[0] for r in sqlite3.connect(":memory:").execute("PRAGMA compile_options")),
        "tantivy": importlib.metadata.version("tantivy"),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "analysis_s": t1 - t0,  # analyze() over every chunk: part of both engines' build times
        "analysis_1000_ms": (now() - t1) * 1000,  # the same for the 1,000 chunks each add writes
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="Folder holding the SciFact store.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--passes", type=int, default=3, help="Timed passes over the queries (median per query).")
    parser.add_argument("--repeats", type=int, default=5, help="Builds and add/delete rounds (median).")
    parser.add_argument("--scale-passes", type=int, default=1, help="Timed query passes at x13 (FTS5 is slow there).")
    parser.add_argument("--replicas", type=int, default=REPLICAS, help="Copies for the scale test (0: skip).")
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child[0], Path(args.child[1]), args.questions)

    work = Path(tempfile.mkdtemp(prefix="lexical-engines-"))
    try:
        chunks, source = load_chunks(args.home, work)
        questions = load_questions(args.questions)
        env = environment(chunks, source)
        print(f"{len(chunks):,} chunks from {source}; {len(questions)} questions with gold papers", file=sys.stderr)
        results = {"env": env, "scifact": measure_size("scifact", chunks, questions, work, args)}
        if args.replicas > 1:
            big = [*chunks, *replicate(chunks, "x", args.replicas - 1)]
            results[f"x{args.replicas}"] = measure_size(f"x{args.replicas}", big, questions, work, args)
        env["loadavg_end"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, args)


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    env = results["env"]
    print(
        f"python {env['python']}, SQLite {env['sqlite']} (FTS5 {env['fts5']}), tantivy {env['tantivy']}, "
        f"{env['cpus']} CPUs, load average {env['loadavg_start'][0]:.2f} at start, {env['loadavg_end'][0]:.2f} at end; "
        f"analyze(): {env['analysis_s']:.2f} s over all SciFact chunks, {env['analysis_1000_ms']:.0f} ms over "
        f"the 1,000 an add writes (inside both engines' build and add times). Latency: median per query over "
        f"{args.passes} timed passes (SciFact) / {args.scale_passes} (x{args.replicas}), after {WARMUP} warm-up "
        f"queries; builds, adds and deletes: median of {args.repeats} (one build at x{args.replicas}).\n"
    )
    for label, res in results.items():
        if label != "env":
            print(f"## {label}: {res['tantivy']['count']:,} chunks\n\n{table(res)}\n")
    print(f"## concurrency (SciFact)\n\n{concurrency_table(results['scifact'])}\n")
    big = [k for k in results if k.startswith("x")]
    if big:
        print(f"## growth\n\n{growth_table(results['scifact'], results[big[0]])}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
