"""Scale benchmark: hybrid retrieval, incremental updates and memory from 10k to 1M chunks.

For each size N, a collection of N synthetic chunks is built in a fresh RAG_HOME through the project's
write path (``Store.collection_for_write`` + ``Indexer.write_step``, steps of ~5,000 chunks), then each
phase runs in a fresh process, so its time and peak memory are its own:

* open: the lexical index (a fresh ``LexicalIndex(folder)``, then its first searcher and BM25 search);
  disk sizes of the lexical index and of Chroma;
* query, once per system (hybrid, hybrid without the query adapter, bm25, dense, hybrid with
  ``Filters(year_min=2010)``, hybrid within 50 papers): ``Retriever(...)`` (timed), its first search (timed:
  the cold cost after opening), ~200 warm searches (p50/p95) and the process's peak RSS: the memory of a
  reader opening an existing collection; the hybrid process also
  times each part of a search (embedding, Chroma query, BM25, fetching BM25 hits from Chroma…);
* update: 100 papers (~1,000 chunks) added with write_step's steps timed one by one (lexical index work
  vs Chroma) and checked searchable from a Retriever opened before; 100 more through ``write_step``
  itself; every chunk id listed from Chroma and from the lexical index (the catch-up path); both batches
  deleted with ``Indexer.delete``.

Texts are real: sentences of the SciFact and PubMedQA abstracts, recombined (seeded) into chunks of
6-10 sentences and 200-300 tiktoken tokens, papers of 1-20 chunks with real SciFact titles. Vectors:
the first 2,000 chunks get the real embedder's vectors, every other chunk a jittered copy of one of them
(cheap stand-ins, see ``StandIns``). Queries are real SciFact claims and PubMedQA questions, embedded by
the real embedder at query time. Growth is reported per figure as the ratio per 10x of N and the fitted
log-log exponent (1 = linear, 0 = flat). The machine may be shared: load averages are recorded.

    python benchmarks/scale.py [--chunks 10000 100000 1000000] [--home DIR --keep] [--json PATH [--reuse]]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.datasets import find_local  # noqa: E402
from rag.lang.sentences import split_sentences  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.tokens import count_tokens  # noqa: E402
from rag.types import Chunk, Filters  # noqa: E402

COLLECTION = "scale"
SEED = 20_240_601  # any fixed seed: the same N always builds the same collection, sizes share a prefix
STEP_CHUNKS = 5_000  # chunks per write_step: about one Chroma batch (its max is 5,461), whole papers only
PAPER_CHUNKS = (1, 20)  # chunks per paper, uniform: mean 10.5, so 100 papers are ~1,000 chunks
CHUNK_TOKENS = (200, 300)  # target tokens per chunk, uniform; 300 is ChunkSettings.max_tokens
CHUNK_SENTENCES = (6, 10)  # sentences per chunk; corpus sentences average ~30 tokens, so 6-10 fill the target
SENTENCE_TOKENS = (8, 60)  # kept sentences: drops label fragments and the longest ~7% (tables, run-ons)
YEARS = (1990, 2024)
NO_YEAR = 0.1  # share of papers without a year, as some records lack one (never inside a year filter)
JITTER = 0.03  # σ per dimension of a stand-in's noise: norm ~0.03·√384 ≈ 0.6, cosine ~0.86 to its real
# vector: a close but distinct neighbour, like related chunks under MiniLM (not 2,000 exact duplicates)
SAMPLE = 2_000  # chunks embedded for real: ~500k tokens, about a minute at the embedder's ~8k tokens/s
QUERIES = 200  # warm searches per system: p95 from ~10 slowest, small against Chroma's own variance
QUERY_SECONDS, MIN_QUERIES = 150.0, 30  # but stop after 150 s (seconds-long filtered searches at 1M), from 30 on
BREAKDOWN_QUERIES = 50  # searches per part in the hybrid breakdown (parts are timed one at a time)
PART_SECONDS, MIN_PART_QUERIES = 30.0, 5  # likewise per part
ADD_PAPERS = 100  # the update: 100 papers (~1,000 chunks) into a large collection
ADD_FIRST_DOC = 10_000_000  # added papers' doc numbers: clear of every built paper (1M chunks ≈ 95k papers)
FILTER = Filters(year_min=2010)  # 15 of 35 years, 90% with a year: ~39% of chunks pass
PAPERS = Filters(doc_ids=[f"scale:{i}" for i in range(0, 950, 19)])  # 50 papers, all within the first 10k chunks
K, CANDIDATES = 10, 100  # RetrieveSettings defaults: evidence returned, candidates per retriever
# "hybrid-plain": the hybrid without the query adapter (the default has it), its cost measured in the same run
SYSTEMS = ("hybrid", "hybrid-plain", "bm25", "dense", "hybrid+filter", "hybrid+papers")
LADDER = (1_000_000, 500_000, 300_000, 200_000, 100_000)  # sizes tried when the next one would not fit the budget
TARGETS = {  # from the issue
    "hybrid_p50_ms": 100.0,  # at 1M chunks, with and without a filter
    "add_lexical_s": 2.0,  # 100 papers into a 1M collection, searchable, in index work
    "lexical_open_s": 1.0,
}

clock = time.perf_counter


# -- data --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    sentences: list[str]
    tokens: list[int]  # tiktoken (cl100k_base) count of each sentence
    titles: list[str]


def settings_for(home: Path) -> Settings:
    return Settings(home=home, chroma_url=None, collection=COLLECTION)


def _data_file(name: str, filename: str) -> Path:
    path = find_local(name, filename, data_dir=Settings().data_dir)
    if path is None:
        sys.exit(f"{name}/{filename} not found: put the shared data in ../shared/data or set RAG_DATA_DIR")
    return path


def load_corpus() -> Corpus:
    """The distinct sentences of both corpora within SENTENCE_TOKENS, and the real titles (SciFact's:
    PubMedQA ships none)."""
    sentences: list[str] = []
    titles: list[str] = []
    for name in ("scifact", "pubmedqa"):
        for line in _data_file(name, "corpus.jsonl").open(encoding="utf-8"):
            record = json.loads(line)
            if record.get("title"):
                titles.append(str(record["title"]).strip())
            sentences += split_sentences(record.get("abstract") or "")
    kept = [
        (s, n) for s in dict.fromkeys(sentences) if SENTENCE_TOKENS[0] <= (n := count_tokens(s)) <= SENTENCE_TOKENS[1]
    ]
    return Corpus([s for s, _ in kept], [n for _, n in kept], titles)


def load_questions(n: int) -> list[str]:
    """``n`` real questions, half SciFact claims and half PubMedQA questions, interleaved (seeded)."""
    sets = []
    for name in ("scifact", "pubmedqa"):
        rows = [json.loads(line)["question"] for line in _data_file(name, "questions.jsonl").open() if line.strip()]
        sets.append(random.Random(SEED).sample(rows, min(len(rows), (n + 1) // 2)))
    return [q for pair in zip(*sets, strict=False) for q in pair][:n]


def chunk_text(rng: random.Random, corpus: Corpus) -> tuple[str, int]:
    """Random sentences up to a random target of 200-300 tokens (6-10 sentences). The count is the sum
    of the sentences' tiktoken counts: joining with spaces changes it by at most a token per sentence."""
    target, picked, total = rng.randint(*CHUNK_TOKENS), list[int](), 0
    for _ in range(40):  # bounded draws: a sentence that would pass 300 tokens is skipped
        if len(picked) >= CHUNK_SENTENCES[1] or (total >= target and len(picked) >= CHUNK_SENTENCES[0]):
            break
        i = rng.randrange(len(corpus.sentences))
        if total + corpus.tokens[i] <= CHUNK_TOKENS[1]:
            picked.append(i)
            total += corpus.tokens[i]
    return " ".join(corpus.sentences[i] for i in picked), total


def make_paper(num: int, n_chunks: int, rng: random.Random, corpus: Corpus, marker: str = "") -> list[Chunk]:
    """One paper's chunks, with ids and hashes made as rag.chunk makes them (content hashes)."""
    doc_id = f"scale:{num}"
    title = rng.choice(corpus.titles)
    year = None if rng.random() < NO_YEAR else rng.randint(*YEARS)
    parts = [chunk_text(rng, corpus) for _ in range(n_chunks)]
    if marker:  # a distinctive token in every chunk of an added paper, to find exactly them by BM25
        extra = f" Marker {marker}."
        parts = [(text + extra, n + count_tokens(extra)) for text, n in parts]
    # stands in for rag.chunk.paper_hash (a hash of everything that decides the paper's chunks)
    digest = hashlib.sha256(json.dumps([doc_id, title, year, [t for t, _ in parts]]).encode()).hexdigest()[:32]
    return [
        Chunk(
            chunk_id=hashlib.sha256(f"{doc_id}\x00{digest}\x00{i}\x00{text}".encode()).hexdigest()[:32],
            doc_id=doc_id,
            text=text,
            index=i,
            n_chunks=n_chunks,
            n_tokens=n_tokens,
            title=title,
            year=year,
            source=f"benchmarks/scale.py:{num}",
            paper_hash=digest,
        )
        for i, (text, n_tokens) in enumerate(parts)
    ]


def papers(
    corpus: Corpus, seed: int, first: int = 0, total_chunks: int | None = None, marker: str = ""
) -> Iterator[list[Chunk]]:
    """Papers numbered from ``first``, until ``total_chunks`` (the last paper cut to fit) or forever."""
    rng, made, num = random.Random(seed), 0, first
    while total_chunks is None or made < total_chunks:
        n = rng.randint(*PAPER_CHUNKS)
        if total_chunks is not None:
            n = min(n, total_chunks - made)
        yield make_paper(num, n, rng, corpus, marker)
        made, num = made + n, num + 1


def steps(paper_chunks: Iterator[list[Chunk]], size: int = STEP_CHUNKS) -> Iterator[list[Chunk]]:
    """Write steps of about ``size`` chunks, never splitting a paper (as Indexer._groups)."""
    group: list[Chunk] = []
    for chunks in paper_chunks:
        group += chunks
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group


class StandIns:
    """Vectors in chunk order: the sample's real vectors for the first chunks, then for each further chunk
    a random sample vector plus Gaussian jitter (σ = JITTER per dimension), re-normalised, float32."""

    def __init__(self, sample: np.ndarray, seed: int, start: int = 0) -> None:
        self.sample, self.rng, self.done = sample, np.random.default_rng(seed), start

    def take(self, n: int) -> np.ndarray:
        real = self.sample[self.done : self.done + n]
        base = self.sample[self.rng.integers(0, len(self.sample), n - len(real))]
        jittered = base + self.rng.normal(0.0, JITTER, base.shape).astype(np.float32)
        jittered /= np.linalg.norm(jittered, axis=1, keepdims=True)
        self.done += n
        return np.concatenate([real, jittered]).astype(np.float32)


def sample_vectors(path: Path, corpus: Corpus) -> np.ndarray:
    """The real embedder's vectors of the first SAMPLE chunks of every build (cached in ``path``)."""
    if path.exists():
        return np.load(path)
    from rag.embed import make_embedder
    from rag.indexing import embedding_text

    chunks = [c for p in papers(corpus, SEED, total_chunks=SAMPLE) for c in p]
    print(f"embedding {len(chunks):,} sample chunks with the real embedder…", file=sys.stderr, flush=True)
    t0 = clock()
    vectors = make_embedder(settings_for(path.parent)).embed([embedding_text(c) for c in chunks])
    print(f"  {len(chunks) / (clock() - t0):.1f} chunks/s", file=sys.stderr)
    np.save(path, vectors.astype(np.float32))
    return np.load(path)


# -- phases (each in its own process) ------------------------------------------------------------------
def peak_rss_mb() -> float:
    """This process's peak RSS. Linux keeps ru_maxrss across exec (a child starts at its parent's peak), so
    VmHWM, the high-water mark of this process image alone, is read first."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def disk_mb(folder: Path) -> float:
    """Allocated size on disk (blocks), like du."""
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                continue  # a file removed meanwhile (a merged segment)
    return total / 2**20


def phase_build(home: Path, n: int, sample: np.ndarray) -> dict[str, Any]:
    """N chunks through Store.collection_for_write + Indexer.write_step, with progress to stderr."""
    from rag.embed import make_embedder
    from rag.indexing import Indexer
    from rag.store import Store

    store = Store(settings_for(home))
    col = store.collection_for_write(COLLECTION, make_embedder(store.settings))
    indexer = Indexer(store)
    lexical = indexer.lexical(COLLECTION)
    vectors, corpus = StandIns(sample, SEED), load_corpus()
    gen_s = write_s = 0.0
    done, marks = 0, [(0, 0.0)]  # (chunks done, write seconds so far): the marginal rate at the end
    stream, started = steps(papers(corpus, SEED, total_chunks=n)), clock()
    while True:
        t0 = clock()
        group = next(stream, None)
        if group is None:
            break
        vecs = vectors.take(len(group))
        t1 = clock()
        indexer.write_step(col, lexical, group, vecs)
        gen_s, write_s, done = gen_s + t1 - t0, write_s + clock() - t1, done + len(group)
        marks.append((done, write_s))
        if len(marks) % 4 == 0 or done == n:  # a line per ~20k chunks
            eta = (n - done) * (clock() - started) / done
            print(
                f"[build {n:,}] {done:,} chunks  {done / (clock() - started):,.0f} chunks/s overall, "
                f"{len(group) / (clock() - t1):,.0f}/s last step  eta {eta / 60:.1f} min",
                file=sys.stderr,
                flush=True,
            )
    tail = [m for m in marks if m[0] <= 0.75 * done][-1]  # where the last quarter began: its rate extrapolates
    return {
        "chunks": col.count(),
        "lexical_docs": lexical.count(),
        "build_s": clock() - started,
        "generate_s": gen_s,
        "write_s": write_s,
        "write_rate": done / write_s,
        "last_quarter_rate": (done - tail[0]) / max(write_s - tail[1], 1e-9),
        "rss_mb": peak_rss_mb(),
    }


def phase_open(home: Path) -> dict[str, Any]:
    """The lexical index opened by a fresh process (imports excluded), its first searcher and search;
    and the embedder's model load, a constant inside every first dense or hybrid query."""
    t0 = clock()
    from rag.embed import make_embedder
    from rag.lexical import LexicalIndex, analyze, lexical_folder

    imports_s, settings = clock() - t0, settings_for(home)
    folder = lexical_folder(home, None, COLLECTION, settings.retrieve.title_weight)
    t0 = clock()
    index = LexicalIndex(folder, settings.retrieve.title_weight)
    open_s = clock() - t0
    t0 = clock()
    docs = index.count()  # reload + searcher: every segment opened
    searcher_s = clock() - t0
    question = load_questions(1)[0]
    t0 = clock()
    analyze("warm")  # the analyzer's one-off loads (stemmer, stop list), part of any first BM25 search
    analyzer_s = clock() - t0
    t0 = clock()
    hits = index.search(question, CANDIDATES)
    search_s = clock() - t0
    lexical_rss = peak_rss_mb()  # a process that has opened and searched the lexical index, nothing else
    embedder = make_embedder(settings)
    t0 = clock()
    embedder.embed(["vitamin D and bone density"])
    embedder_load_s = clock() - t0
    return {
        "imports_s": imports_s,
        "lexical_open_s": open_s,
        "lexical_searcher_s": searcher_s,
        "analyzer_load_s": analyzer_s,
        "lexical_first_search_s": search_s,
        "lexical_docs": docs,
        "first_hits": len(hits),
        "embedder_load_s": embedder_load_s,
        "lexical_rss_mb": lexical_rss,
        "rss_mb": peak_rss_mb(),
    }


def phase_query(home: Path, system_name: str, spawned: float) -> dict[str, Any]:
    """One system's searches from a fresh process: open, first search, QUERIES warm searches, peak RSS."""
    from rag.retrieve import Retriever

    startup_s = time.time() - spawned  # interpreter start + imports (chromadb's mostly)
    questions = load_questions(QUERIES + 1)
    system, filters = {"hybrid+filter": ("hybrid", FILTER), "hybrid+papers": ("hybrid", PAPERS)}.get(
        system_name, (system_name.removesuffix("-plain"), None)
    )
    settings = settings_for(home)
    if system_name == "hybrid-plain":
        settings = settings.with_retrieve(query_adapter=False)
    t0 = clock()
    retriever = Retriever(settings, collection=COLLECTION)
    open_s = clock() - t0
    t0 = clock()
    retriever.search(questions[0], k=K, filters=filters, system=system)  # type: ignore[arg-type]
    first_s = clock() - t0
    times, found, cpu = [], [], time.process_time()  # CPU time: less sensitive than wall time to a busy machine
    began = clock()
    for q in questions[1:]:
        if len(times) >= MIN_QUERIES and clock() - began > QUERY_SECONDS:
            break
        t0 = clock()
        evidence = retriever.search(q, k=K, filters=filters, system=system)  # type: ignore[arg-type]
        times.append(clock() - t0)
        found.append(len(evidence))
    out = {
        "startup_s": startup_s,
        "open_s": open_s,
        "first_s": first_s,
        "p50_ms": 1000 * float(np.percentile(times, 50)),
        "p95_ms": 1000 * float(np.percentile(times, 95)),
        "mean_ms": 1000 * float(np.mean(times)),
        "cpu_ms": 1000 * (time.process_time() - cpu) / len(times),  # all threads of the process, per search
        "evidence_mean": float(np.mean(found)),
        "queries": len(times),
        "rss_mb": peak_rss_mb(),
    }
    if system_name == "hybrid":
        out["parts_ms"] = breakdown(retriever, questions[1 : BREAKDOWN_QUERIES + 1])
    return out


def breakdown(retriever: Any, questions: list[str]) -> dict[str, float]:
    """p50 of each call a hybrid search makes, timed alone over the same questions (inputs made first)."""
    from rag.retrieve import chroma_where

    store, lexical = retriever.store, retriever.lexical()
    col = store.collection(COLLECTION)
    vectors = {q: retriever.embedder.embed([q]) for q in questions}
    hit_ids = {q: [h.chunk_id for h in lexical.search(q, CANDIDATES)] for q in questions}
    include = ["documents", "metadatas", "distances"]
    parts: dict[str, Callable[[str], Any]] = {
        "embed query": lambda q: retriever.embedder.embed([q]),
        "chroma query": lambda q: col.query(query_embeddings=vectors[q], n_results=CANDIDATES, include=include),
        "chroma query+filter": lambda q: col.query(
            query_embeddings=vectors[q], n_results=CANDIDATES, where=chroma_where(FILTER), include=include
        ),
        "chroma count": lambda q: col.count(),
        "store revision": lambda q: store.revision(COLLECTION),
        "bm25 search": lambda q: lexical.search(q, CANDIDATES),
        "bm25 search+filter": lambda q: lexical.search(q, CANDIDATES, FILTER),
        "chunks_by_id (100 BM25 hits)": lambda q: store.chunks_by_id(col, hit_ids[q]),
        # what a search could do instead (not what rag does now): ids and distances only, documents later
        "alt: chroma query, ids+distances only": lambda q: col.query(
            query_embeddings=vectors[q], n_results=CANDIDATES, include=["distances"]
        ),
    }
    out = {}
    for name, call in parts.items():
        times, began = [], clock()
        for q in questions:
            if len(times) >= MIN_PART_QUERIES and clock() - began > PART_SECONDS:
                break
            t0 = clock()
            call(q)
            times.append(clock() - t0)
        out[name] = 1000 * float(np.percentile(times, 50))
    return out


@dataclass
class Batch:
    chunks: list[Chunk]
    vectors: np.ndarray
    token: str  # the distinctive word planted in every chunk

    @property
    def docs(self) -> set[str]:
        return {c.doc_id for c in self.chunks}


def make_batch(corpus: Corpus, sample: np.ndarray, which: int) -> Batch:
    """ADD_PAPERS new papers (one write step: ~1,000 chunks) with their stand-in vectors."""
    token = f"zqxmarker{'abcdefgh'[which]}"  # no corpus word looks like it; the stemmer keeps it whole
    first = ADD_FIRST_DOC + which * ADD_PAPERS
    source = papers(corpus, SEED + 100 + which, first=first, marker=token)
    chunks = [c for _, p in zip(range(ADD_PAPERS), source, strict=False) for c in p]
    vectors = StandIns(sample, SEED + 100 + which, start=len(sample)).take(len(chunks))
    return Batch(chunks, vectors, token)


def timed_write_step(indexer: Any, col: Any, lexical: Any, batch: Batch) -> dict[str, float]:
    """Indexer.write_step's steps, in its order, each timed: "lexical work" is the writer lock, adding and
    committing, recording the revision and closing the writer (which waits for the merges it started)."""
    store, t = indexer.store, {}
    start = clock()
    with lexical.writer() as lex:
        assert lex is not None
        t["lock_s"] = clock() - start
        mark = clock()
        level = indexer._is_level(col, lexical)  # as write_step: is the index level with Chroma now?
        stale = store.stale_ids(col, batch.chunks)
        t["plan_s"] = clock() - mark
        mark = clock()
        lex.add(batch.chunks)
        lex.delete(stale)
        lex.commit()
        t["lexical_add_commit_s"] = clock() - mark
        mark = clock()
        store.write_chunks(col, batch.chunks, batch.vectors)
        store.delete_ids(col, stale)
        revision = store.bump_revision(col)
        t["chroma_s"] = clock() - mark
        mark = clock()
        if level:
            lex.record(revision)
        t["record_s"] = clock() - mark
        closing = clock()
    t["lexical_close_s"] = clock() - closing
    t["total_s"] = clock() - start
    t["lexical_s"] = t["lock_s"] + t["lexical_add_commit_s"] + t["record_s"] + t["lexical_close_s"]
    t["level"] = float(level)
    return t


def searchable(retriever: Any, lexical: Any, batch: Batch, started: float) -> dict[str, Any]:
    """Poll the already-open Retriever (BM25) until its top K are all new papers; then check the index
    holds every new chunk, and how many of the hybrid top K are new."""
    tries, t0 = 0, clock()
    while True:
        tries += 1
        evidence = retriever.search(batch.token, k=K, system="bm25")
        ok = len(evidence) == K and all(e.chunk.doc_id in batch.docs for e in evidence)
        if ok or clock() - t0 > 30:  # 30 s: far past any target; a failure is reported, not waited out
            break
    found_s = clock() - started
    hits = lexical.search(batch.token, len(batch.chunks) + 100)
    hybrid = retriever.search(batch.token, k=K)
    return {
        "searchable": ok,
        "searchable_s": found_s,
        "tries": tries,
        "all_chunks_indexed": {h.chunk_id for h in hits} == {c.chunk_id for c in batch.chunks},
        "hybrid_top_new": sum(e.chunk.doc_id in batch.docs for e in hybrid),
    }


def timed_delete(indexer: Any, retriever: Any, lexical: Any, batch: Batch) -> dict[str, Any]:
    t0 = clock()
    removed = indexer.delete(sorted(batch.docs), COLLECTION)
    seconds = clock() - t0
    left = retriever.search(batch.token, k=K, system="bm25")
    gone = not lexical.search(batch.token, K) and not any(e.chunk.doc_id in batch.docs for e in left)
    return {"delete_s": seconds, "removed": removed, "expected": len(batch.chunks), "gone": gone}


def listing(store: Any, lexical: Any) -> dict[str, Any]:
    """Every chunk id from Chroma (col.get(include=[]), paged) and from the lexical index: the catch-up path."""
    t0 = clock()
    stored = store.chunk_ids(COLLECTION)
    chroma_s = clock() - t0
    t0 = clock()
    unpaged = store.collection(COLLECTION).get(include=[])["ids"]  # the alternative: one call, no offsets
    unpaged_s = clock() - t0
    t0 = clock()
    indexed = lexical.chunk_ids()
    lexical_s = clock() - t0
    return {
        "chroma_ids_s": chroma_s,
        "chroma_ids_unpaged_s": unpaged_s,
        "lexical_ids_s": lexical_s,
        "ids": len(stored),
        "same": stored == indexed == set(unpaged),
    }


PROBES = 20  # added chunks whose own vectors the other process's reader looks up


class Reader:
    """A reader in another process, open (and searched once) before this one writes: in embedded Chroma it
    must notice the write and open the store again to see the new vectors (rag.store.Store.current)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", "reader", "--size-home", str(home)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "READY"

    def after_write(self, batch: Batch) -> dict[str, Any]:
        probe = self.home / "probe.npz"
        np.savez(probe, ids=np.array([c.chunk_id for c in batch.chunks[:PROBES]]), vectors=batch.vectors[:PROBES])
        out, _ = self.proc.communicate(f"{probe}\n", timeout=600)
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        return json.loads(lines[-1].removeprefix("RESULT ")) if lines else {"error": f"reader: {self.proc.returncode}"}


def phase_reader(home: Path) -> dict[str, Any]:
    """Reader's side: open, search, wait for the write; then look the added chunks' own vectors up with
    the client it has (before), time its first search after the write, and look them up again (after)."""
    from rag.retrieve import Retriever

    questions = load_questions(2)
    retriever = Retriever(settings_for(home), collection=COLLECTION)
    retriever.search(questions[0], k=K)
    print("READY", flush=True)
    probe = np.load(sys.stdin.readline().strip())
    before = found_by(retriever.store.collection(COLLECTION), probe)
    t0 = clock()
    retriever.search(questions[1], k=K)
    first_s = clock() - t0
    after = found_by(retriever.store.collection(COLLECTION), probe)
    return {"first_search_s": first_s, "found_before": before, "found": after, "rss_mb": peak_rss_mb()}


def found_by(col: Any, probe: Any) -> int:
    """How many probe chunks a dense query with their own vector ranks first (the stand-ins are near
    copies of one another, so HNSW misses some at size even with a fresh index: compare, not count)."""
    got = col.query(query_embeddings=probe["vectors"], n_results=1, include=[])
    return sum(top[:1] == [cid] for top, cid in zip(got["ids"], probe["ids"].tolist(), strict=True))


def phase_update(home: Path, sample: np.ndarray) -> dict[str, Any]:
    """Add 100 papers twice (timed replica of write_step, then write_step), list ids, delete both."""
    from rag.indexing import Indexer
    from rag.retrieve import Retriever
    from rag.store import Store

    settings, corpus = settings_for(home), load_corpus()
    store = Store(settings)
    indexer, col = Indexer(store), store.collection(COLLECTION)
    lexical = indexer.lexical(COLLECTION)
    retriever = Retriever(settings, collection=COLLECTION)  # a reader opened before the writes
    retriever.search(load_questions(1)[0], k=K)
    batches = [make_batch(corpus, sample, which) for which in (0, 1)]
    for b in batches:  # a run interrupted earlier may have left them
        indexer.delete(sorted(b.docs), COLLECTION)
    out: dict[str, Any] = {"add_chunks": len(batches[0].chunks)}
    reader = Reader(home)  # and a reader in another process, open before the writes too
    started = clock()
    out["add"] = timed_write_step(indexer, col, lexical, batches[0])
    out["add"] |= searchable(retriever, lexical, batches[0], started)
    out["reader"] = reader.after_write(batches[0])  # it writes the probe file
    out["reader"]["found_by_writer"] = found_by(store.collection(COLLECTION), np.load(home / "probe.npz"))
    started = clock()
    indexer.write_step(col, lexical, batches[1].chunks, batches[1].vectors)
    out["add_write_step_s"] = clock() - started
    out["add_b"] = searchable(retriever, lexical, batches[1], started)
    out["listing"] = listing(store, lexical)
    out["delete"] = timed_delete(indexer, retriever, lexical, batches[0])
    out["delete_b"] = timed_delete(indexer, retriever, lexical, batches[1])
    out["chunks_after"] = col.count()
    out["rss_mb"] = peak_rss_mb()
    return out


def child(args: argparse.Namespace) -> None:
    """Run one phase and print its figures as the last stdout line (``RESULT {json}``)."""
    home, sample = args.size_home, np.load(args.sample_file) if args.sample_file else None
    if args.phase == "build":
        out = phase_build(home, args.n, sample)
    elif args.phase == "open":
        out = phase_open(home)
    elif args.phase == "query":
        out = phase_query(home, args.system, args.spawned)
    elif args.phase == "reader":
        out = phase_reader(home)
    else:
        out = phase_update(home, sample)
    print("RESULT " + json.dumps(out), flush=True)


# -- the run -------------------------------------------------------------------------------------------
def run_phase(phase: str, home: Path, *extra: str, timeout: float | None = 3600.0) -> dict[str, Any]:
    """One phase in a fresh interpreter (its stderr passes through); an error is recorded, not raised."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--size-home", str(home)]
    load = os.getloadavg()[0]  # the machine may be shared: context for every figure
    try:
        proc = subprocess.run(
            [*cmd, "--spawned", repr(time.time()), *extra], stdout=subprocess.PIPE, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{phase}: timed out after {timeout:.0f} s", "load": load}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        print(proc.stdout[-2000:], file=sys.stderr)
        return {"error": f"{phase}: exit code {proc.returncode}", "load": load}
    return {**json.loads(lines[-1].removeprefix("RESULT ")), "load": load}


def build(home: Path, n: int, sample_file: Path) -> dict[str, Any]:
    """Build N chunks in ``home``, or reuse a complete build left there by an earlier run (--keep)."""
    marker = home / "build.json"
    if marker.exists():
        built = json.loads(marker.read_text())
        if built.get("chunks") == n:
            print(f"[build {n:,}] reusing the collection in {home}", file=sys.stderr)
            return {**built, "reused": True}
    shutil.rmtree(home, ignore_errors=True)
    built = run_phase("build", home, "--n", str(n), "--sample-file", str(sample_file), timeout=None)
    if "error" not in built:
        marker.write_text(json.dumps(built))
    return built


def measure(home: Path, n: int, sample_file: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"n": n, "build": build(home, n, sample_file)}
    if "error" in result["build"]:
        return result
    result["disk"] = {"lexical_mb": disk_mb(home / "indexes"), "chroma_mb": disk_mb(home / "chroma")}
    print(f"[{n:,}] open, queries ({', '.join(SYSTEMS)}), update…", file=sys.stderr, flush=True)
    result["open"] = run_phase("open", home)
    result["query"] = {s: run_phase("query", home, "--system", s) for s in SYSTEMS}
    result["update"] = run_phase("update", home, "--sample-file", str(sample_file))
    return result


def fit(points: list[tuple[float, float]]) -> float | None:
    """The log-log slope of value against N (least squares); None with fewer than two positive points."""
    pts = [(n, v) for n, v in points if v and v > 0]
    if len(pts) < 2:
        return None
    return float(np.polyfit(np.log10([n for n, _ in pts]), np.log10([v for _, v in pts]), 1)[0])


def plan(n: int, done: list[dict[str, Any]], budget_s: float) -> tuple[int, float | None]:
    """The size to build next and its estimated build time: ``n`` if it fits the budget, else the largest
    of LADDER that does (0: none). Estimated from earlier builds: their fitted growth of build time (at
    least linear) from the last one, or that build's last-quarter rate, whichever is slower."""
    builds = [(r["n"], r["build"]) for r in done if "build_s" in r.get("build", {})]
    if not builds:
        return n, None
    exponent = max(1.0, fit([(m, b["build_s"]) for m, b in builds]) or 1.0)
    last_n, last = builds[-1]

    def estimate(m: int) -> float:
        return max(last["build_s"] * (m / last_n) ** exponent, m / last["last_quarter_rate"])

    if not budget_s or estimate(n) <= budget_s:
        return n, estimate(n)
    fits = [m for m in LADDER if last_n < m < n and estimate(m) <= budget_s]
    print(
        f"[plan] {n:,} chunks would take ~{estimate(n) / 60:.0f} min to build (over the {budget_s / 60:.0f} min "
        f"budget; {last['last_quarter_rate']:,.0f} chunks/s at the end of the {last_n:,} build)",
        file=sys.stderr,
    )
    return (fits[0], estimate(fits[0])) if fits else (0, estimate(n))


# -- the report ----------------------------------------------------------------------------------------
Row = tuple[str, tuple[str, ...], float, str, float | None]  # label, path in a result, scale, format, target


def rows() -> list[Row]:
    """The table: what is printed, from where in a size's result, in which unit, with which target."""
    return _build_rows() + _query_rows() + _update_rows()


def _build_rows() -> list[Row]:
    open_target = 1000 * TARGETS["lexical_open_s"]
    return [
        ("build: total (s)", ("build", "build_s"), 1, ".0f", None),
        ("build: write_step rate (chunks/s)", ("build", "write_rate"), 1, ",.0f", None),
        ("build: rate in the last quarter (chunks/s)", ("build", "last_quarter_rate"), 1, ",.0f", None),
        ("build: generating chunks + vectors (s)", ("build", "generate_s"), 1, ".1f", None),
        ("build: peak RSS (MB)", ("build", "rss_mb"), 1, ",.0f", None),
        ("disk: lexical index (MB)", ("disk", "lexical_mb"), 1, ",.1f", None),
        ("disk: Chroma (MB)", ("disk", "chroma_mb"), 1, ",.0f", None),
        ("lexical index open, fresh process (ms)", ("open", "lexical_open_s"), 1000, ".1f", open_target),
        ("lexical index first searcher (ms)", ("open", "lexical_searcher_s"), 1000, ".1f", None),
        ("lexical-only process peak RSS (MB)", ("open", "lexical_rss_mb"), 1, ",.0f", None),
        ("BM25 analyzer load, once per process (ms)", ("open", "analyzer_load_s"), 1000, ".0f", None),
        ("lexical index first BM25 search, after it (ms)", ("open", "lexical_first_search_s"), 1000, ".1f", None),
        ("embedder model load, once per process (ms)", ("open", "embedder_load_s"), 1000, ".0f", None),
    ]


def _query_rows() -> list[Row]:
    out: list[Row] = []
    for s in SYSTEMS:
        target = TARGETS["hybrid_p50_ms"] if s.startswith("hybrid") else None
        out += [
            (f"{s}: p50 (ms)", ("query", s, "p50_ms"), 1, ".1f", target),
            (f"{s}: p95 (ms)", ("query", s, "p95_ms"), 1, ".1f", None),
            (f"{s}: CPU time per search, mean (ms)", ("query", s, "cpu_ms"), 1, ".1f", None),
            (f"{s}: warm searches timed", ("query", s, "queries"), 1, ".0f", None),
            (f"{s}: load average at process start", ("query", s, "load"), 1, ".1f", None),
            (f"{s}: Retriever() open (ms)", ("query", s, "open_s"), 1000, ".0f", None),
            (f"{s}: first search after open (ms)", ("query", s, "first_s"), 1000, ".0f", None),
            (f"{s}: reader process peak RSS (MB)", ("query", s, "rss_mb"), 1, ",.0f", None),
        ]
    parts = ["embed query", "chroma query", "chroma query+filter", "chroma count", "store revision"]
    parts += ["bm25 search", "bm25 search+filter", "chunks_by_id (100 BM25 hits)"]
    parts += ["alt: chroma query, ids+distances only"]
    return out + [(f"part: {p} p50 (ms)", ("query", "hybrid", "parts_ms", p), 1, ".1f", None) for p in parts]


def _update_rows() -> list[Row]:
    add, listing = "add 100 papers:", ("update", "listing")
    return [
        (f"{add} lexical index work (s)", ("update", "add", "lexical_s"), 1, ".3f", TARGETS["add_lexical_s"]),
        (f"{add}  of which lexical add+commit (s)", ("update", "add", "lexical_add_commit_s"), 1, ".3f", None),
        (f"{add}  of which writer close/merges (s)", ("update", "add", "lexical_close_s"), 1, ".3f", None),
        (f"{add} stale-id check in Chroma (s)", ("update", "add", "plan_s"), 1, ".3f", None),
        (f"{add} Chroma write (s)", ("update", "add", "chroma_s"), 1, ".3f", None),
        (f"{add} total (s)", ("update", "add", "total_s"), 1, ".3f", None),
        (f"{add} searchable from an open Retriever (s)", ("update", "add", "searchable_s"), 1, ".3f", None),
        (f"{add} again, via write_step itself (s)", ("update", "add_write_step_s"), 1, ".3f", None),
        (f"{add} first search in another process (s)", ("update", "reader", "first_search_s"), 1, ".3f", None),
        (
            f"{add} of {PROBES} own vectors ranked first: writer",
            ("update", "reader", "found_by_writer"),
            1,
            ".0f",
            None,
        ),
        (f"{add}  … by another process before its search", ("update", "reader", "found_before"), 1, ".0f", None),
        (f"{add}  … and after it", ("update", "reader", "found"), 1, ".0f", None),
        ("another process's reader: peak RSS (MB)", ("update", "reader", "rss_mb"), 1, ",.0f", None),
        ("delete 100 papers, Indexer.delete (s)", ("update", "delete", "delete_s"), 1, ".3f", None),
        ("delete 100 more (s)", ("update", "delete_b", "delete_s"), 1, ".3f", None),
        ("all chunk ids from Chroma, paged: Store.chunk_ids (s)", (*listing, "chroma_ids_s"), 1, ".2f", None),
        ("alt: all chunk ids from Chroma in one get (s)", (*listing, "chroma_ids_unpaged_s"), 1, ".2f", None),
        ("all chunk ids from the lexical index (s)", (*listing, "lexical_ids_s"), 1, ".2f", None),
        ("update process peak RSS (MB)", ("update", "rss_mb"), 1, ",.0f", None),
    ]


def dig(result: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, (int, float)) else None


def table(results: list[dict[str, Any]]) -> str:
    """Figures per size, their growth (x per 10x of N, and the log-log exponent) and the target."""
    sizes = [r["n"] for r in results]
    head = f"{'figure':56s}" + "".join(f"{_size(n):>11s}" for n in sizes) + f"{'x/10x':>8s}{'exp':>7s}  target"
    lines = [head, "-" * len(head)]
    for label, path, scale, fmt, target in rows():
        values = [dig(r, path) for r in results]
        values = [v * scale if v is not None else None for v in values]
        cells = []
        for v in values:
            mark = "" if target is None or v is None else (" ✓" if v <= target else " ✗")
            cells.append(f"{'—' if v is None else format(v, fmt) + mark:>11s}")
        b = fit(list(zip(sizes, values, strict=True)))  # type: ignore[arg-type]
        growth = f"{10**b:8.2f}{b:7.2f}" if b is not None else f"{'':15s}"
        tail = f"  ≤ {target:g} (at 1M)" if target is not None else ""
        lines.append(f"{label:56s}{''.join(cells)}{growth}{tail}")
    return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def checks(result: dict[str, Any]) -> list[str]:
    """Correctness behind the figures: counts, searchability, deletions, the two id lists agreeing."""
    n, b, u = result["n"], result.get("build", {}), result.get("update", {})
    phases = [("build", b), ("open", result.get("open", {})), ("update", u), *result.get("query", {}).items()]
    failed = [f"{name}: {p['error']}" for name, p in phases if "error" in p]
    wanted = {
        "built chunks == N (Chroma)": b.get("chunks") == n,
        "built chunks == N (lexical)": b.get("lexical_docs") == n,
        "added papers searchable (BM25 top 10)": u.get("add", {}).get("searchable"),
        "every added chunk in the lexical index": u.get("add", {}).get("all_chunks_indexed"),
        "added via write_step searchable": u.get("add_b", {}).get("searchable"),
        "added vectors found by another process as by the writer": 0
        < u.get("reader", {}).get("found", -1)
        == u.get("reader", {}).get("found_by_writer"),
        "Chroma ids == lexical ids": u.get("listing", {}).get("same"),
        "deleted papers gone": u.get("delete", {}).get("gone") and u.get("delete_b", {}).get("gone"),
        "collection back to N": u.get("chunks_after") == n,
    }
    return failed + [name for name, ok in wanted.items() if not ok]


def verdicts(results: list[dict[str, Any]]) -> list[str]:
    """The issue's targets against the largest size measured."""
    r = results[-1]
    at = f"at {_size(r['n'])}" + ("" if r["n"] >= 1_000_000 else " (the target is at 1M: not measured there)")
    lexical_rss = fit([(x["n"], dig(x, ("open", "lexical_rss_mb")) or 0) for x in results])
    out = []
    for label, path, scale, target in [
        ("hybrid p50", ("query", "hybrid", "p50_ms"), 1, TARGETS["hybrid_p50_ms"]),
        ("hybrid p50 with Filters(year_min=2010)", ("query", "hybrid+filter", "p50_ms"), 1, TARGETS["hybrid_p50_ms"]),
        ("hybrid p50, filtered to 50 papers", ("query", "hybrid+papers", "p50_ms"), 1, TARGETS["hybrid_p50_ms"]),
        ("add 100 papers: lexical index work", ("update", "add", "lexical_s"), 1000, 1000 * TARGETS["add_lexical_s"]),
        ("lexical index open", ("open", "lexical_open_s"), 1000, 1000 * TARGETS["lexical_open_s"]),
    ]:
        v = dig(r, path)
        if v is not None:
            verdict = "met" if v * scale <= target else "MISSED"
            out.append(f"{label}: {v * scale:,.1f} ms {at}; target ≤ {target:,.0f} ms: {verdict}")
    if lexical_rss is not None:
        mb = {
            key: dig(r, path) or 0
            for key, path in [
                ("lex", ("open", "lexical_rss_mb")),
                ("bm25", ("query", "bm25", "rss_mb")),
                ("hybrid", ("query", "hybrid", "rss_mb")),
            ]
        }
        out.append(
            f"memory: a process that opens and searches the lexical index peaks at {mb['lex']:,.0f} MB {at}, growing "
            f"as N^{lexical_rss:.2f} (bounded: {'yes' if lexical_rss < 0.25 else 'NO'}); a BM25-only Retriever peaks at "
            f"{mb['bm25']:,.0f} MB and a hybrid one at {mb['hybrid']:,.0f} MB: the rest is Chroma's (see the table)"
        )
    return out


def token_stats(corpus: Corpus, n: int = 1000) -> str:
    """What the chunks look like: tokens, sentences, and the summed count against tiktoken on the text."""
    chunks = [c for p in papers(corpus, SEED, total_chunks=n) for c in p]
    summed = np.array([c.n_tokens for c in chunks])
    exact = np.array([count_tokens(c.text) for c in chunks])
    sentences = np.mean([len(split_sentences(c.text)) for c in chunks])
    return (
        f"chunk shape (first {n:,}): {summed.mean():.0f} tokens mean ({summed.min()}-{summed.max()}), "
        f"{sentences:.1f} sentences; summed count - exact tiktoken count of the text: mean "
        f"{np.mean(summed - exact):+.2f}, max |{np.abs(summed - exact).max()}|"
    )


def setup_lines(corpus: Corpus, sample: np.ndarray) -> list[str]:
    return [
        token_stats(corpus),
        f"chunks: {len(corpus.sentences):,} distinct real sentences (SciFact + PubMedQA abstracts, {SENTENCE_TOKENS[0]}-"
        f"{SENTENCE_TOKENS[1]} tokens) recombined, {CHUNK_SENTENCES[0]}-{CHUNK_SENTENCES[1]} per chunk up to "
        f"{CHUNK_TOKENS[0]}-{CHUNK_TOKENS[1]} tiktoken tokens (n_tokens: sum of the sentences' tiktoken counts); "
        f"papers of {PAPER_CHUNKS[0]}-{PAPER_CHUNKS[1]} chunks, {len(corpus.titles):,} real SciFact titles, "
        f"years {YEARS[0]}-{YEARS[1]} ({NO_YEAR:.0%} none); doc ids scale:<n>; seed {SEED}",
        f"vectors: the first {len(sample):,} chunks by the real embedder; every other chunk a stand-in: one of those "
        f"plus N(0, {JITTER}²) per dimension, re-normalised (float32) — real cost for Chroma, not real relevance",
        f"queries: 1 first + {QUERIES} warm per system, real SciFact claims and PubMedQA questions, embedded at query "
        f"time by the real embedder; k={K}, {CANDIDATES} candidates per retriever; filter: year ≥ 2010",
        "each phase runs in a fresh process (its peak RSS is its own); the page cache is warm (files just written)",
    ]


def save(path: Path | None, meta: dict[str, Any], results: list[dict[str, Any]]) -> None:
    if path:
        path.write_text(json.dumps({"meta": meta, "sizes": results}, indent=2))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="Sizes N.")
    parser.add_argument("--home", type=Path, help="Folder for the sizes' RAG_HOMEs (default: a temp folder).")
    parser.add_argument("--keep", action="store_true", help="Keep the collections (a later run reuses them).")
    parser.add_argument("--json", type=Path, help="Write every figure here (after each size, too).")
    parser.add_argument("--reuse", action="store_true", help="Keep sizes measured completely in --json already.")
    parser.add_argument(
        "--budget-min", type=float, default=45, help="Largest build, in estimated minutes (0: no limit)."
    )
    # internal: one phase in a child process
    parser.add_argument("--phase", choices=["build", "open", "query", "update", "reader"], help=argparse.SUPPRESS)
    parser.add_argument("--size-home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--sample-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--spawned", type=float, default=0.0, help=argparse.SUPPRESS)
    return parser.parse_args()


def rag_commit() -> str:
    """The checkout measured (others may edit it meanwhile): its commit, "+dirty" when rag/ has changes."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
        dirty = subprocess.run([*git, "status", "--porcelain", "rag"], capture_output=True, text=True).stdout
    except OSError:
        return ""
    return head.strip() + ("+dirty" if dirty.strip() else "")


def earlier(path: Path | None) -> dict[int, dict[str, Any]]:
    """Sizes an earlier run measured completely into the same --json file (--reuse: not measured again)."""
    try:
        sizes = json.loads(path.read_text()).get("sizes", []) if path else []
    except (OSError, ValueError):
        return {}
    return {r["n"]: r for r in sizes if not checks(r)}


def run_sizes(args: argparse.Namespace, root: Path, sample_file: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    before = earlier(args.json) if args.reuse else {}
    for wanted in sorted(set(args.chunks)):
        if wanted in before:
            print(f"[{wanted:,}] reusing the measurements in {args.json}", file=sys.stderr)
            results.append(before[wanted])
            continue
        n, estimate = plan(wanted, results, 60 * args.budget_min)
        if not n:
            print(f"[plan] skipping {wanted:,}: no size above the last fits the budget", file=sys.stderr)
            continue
        if estimate:
            print(f"[plan] building {n:,} chunks: estimated {estimate / 60:.1f} min", file=sys.stderr, flush=True)
        started, commit = time.strftime("%F %T"), rag_commit()
        result = measure(root / f"n{n}", n, sample_file)
        result.update(wanted=wanted, estimate_s=estimate, measured=f"{started} - {time.strftime('%T')}", rag=commit)
        results.append(result)
        save(args.json, meta, results)
        print(f"\n{table(results)}\n", file=sys.stderr, flush=True)
        if not args.keep:
            shutil.rmtree(root / f"n{n}", ignore_errors=True)
    return results


def main() -> None:
    args = parse_args()
    if args.phase:
        child(args)
        return
    root = args.home or Path(tempfile.mkdtemp(prefix="rag-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus()
    sample_file = root / f"sample-{SEED}-{SAMPLE}.npy"
    sample = sample_vectors(sample_file, corpus)
    meta = {"setup": setup_lines(corpus, sample), "cpus": os.cpu_count(), "started": time.strftime("%F %T")}
    results = run_sizes(args, root, sample_file, meta)
    meta["load_at_end"] = os.getloadavg()[0]
    save(args.json, meta, results)
    print("\n".join(meta["setup"]))
    loads = ", ".join(f"{_size(r['n'])}: {r['build'].get('load', 0):.1f}" for r in results)
    print(f"machine: {os.cpu_count()} CPUs, shared; 1-min load average at each build start: {loads}\n")
    print(table(results))
    for r in results:
        bad = checks(r)
        print(f"checks at {_size(r['n'])}: " + ("all passed" if not bad else "FAILED: " + "; ".join(bad)))
    print("\n".join(["", *verdicts(results)]) if results else "no size measured")
    if not args.keep:
        shutil.rmtree(root if args.home is None else sample_file, ignore_errors=True)


if __name__ == "__main__":
    main()
