"""Concurrency with real processes: writers side by side, a writer killed mid-run, ingest while serving,
and two servers (two hosts) on one Chroma server.

Every ingest, server and Chroma server here is a real subprocess; nothing is mocked. The checks are
on what ends up stored: Chroma's chunk ids against the ids the inputs chunk into, whole papers only,
the lexical (BM25) index holding exactly Chroma's ids, and every stored vector findable by a dense
query from a fresh process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rag.chunk import chunk_paper
from rag.errors import RagError
from rag.lexical import LexicalIndex, open_lexical
from rag.read import read_path
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.store import Store
from rag.types import Paper
from tests.conftest import free_port, shared

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "rag.cli"]
# what these tests control themselves; anything else in the environment (cache and data folders) is kept
_OWN_VARS = ("RAG_HOME", "RAG_CHROMA_URL", "RAG_COLLECTION", "RAG_LLM_BASE_URL", "RAG_LLM_MODEL", "RAG_API_KEYS")


# -- inputs -----------------------------------------------------------------------------------
def scifact(start: int, stop: int) -> list[dict[str, Any]]:
    """SciFact records ``start:stop`` (each has a doc_id, a title and an abstract)."""
    out = []
    with shared("scifact").open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= stop:
                break
            if i >= start:
                out.append(json.loads(line))
    return out


def write_slice(path: Path, records: list[dict[str, Any]], settings: Settings) -> dict[str, set[str]]:
    """Write records as a corpus file; returns what ingesting it must store: ``{doc_id: chunk ids}``
    (chunk ids are content hashes, so they are known before anything is embedded)."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    expected: dict[str, set[str]] = {}
    for item in read_path(path):
        assert isinstance(item, Paper), f"{path}: unreadable record {item}"
        expected[item.doc_id] = {c.chunk_id for c in chunk_paper(item, settings.chunk)}
    assert len(expected) == len(records)
    return expected


def all_ids(expected: dict[str, set[str]]) -> set[str]:
    return set().union(*expected.values())


def titles(records: list[dict[str, Any]]) -> dict[str, str]:
    return {r["doc_id"]: r["title"] for r in records}


# -- processes --------------------------------------------------------------------------------
def env_for(home: Path, collection: str, chroma_url: str | None = None, **extra: str) -> dict[str, str]:
    """A subprocess environment for one RAG_HOME (and Chroma server), offline (no LLM endpoint)."""
    env = {k: v for k, v in os.environ.items() if k not in _OWN_VARS}
    env.update(RAG_HOME=str(home), RAG_COLLECTION=collection, ANONYMIZED_TELEMETRY="False", **extra)
    if chroma_url:
        env["RAG_CHROMA_URL"] = chroma_url
    return env


def settings_for(home: Path, chroma_url: str | None = None) -> Settings:
    return Settings(home=home, chroma_url=chroma_url)


def start_ingest(path: Path, collection: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``rag ingest PATH --json`` in the background; stdout (the report) to ``log``, stderr to ``log.err``."""
    with log.open("wb") as out, log.with_suffix(".err").open("wb") as err:
        return subprocess.Popen(
            [*CLI, "ingest", str(path), "-c", collection, "--json", "--no-progress"], env=env, stdout=out, stderr=err
        )


def finish(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> dict[str, Any]:
    """Wait for an ingest started by :func:`start_ingest`: it must exit 0 within ``timeout`` with a clean stderr."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        pytest.fail(f"`rag ingest` did not finish within {timeout} s (a stuck lock?)")
    err = log.with_suffix(".err").read_text(errors="replace")
    assert proc.returncode == 0, f"`rag ingest` exited {proc.returncode}:\n{err}"
    assert_clean(err, "rag ingest")
    return dict(json.loads(log.read_text()))


def run_ingest(path: Path, collection: str, env: dict[str, str], log: Path, timeout: float = 300) -> dict[str, Any]:
    return finish(start_ingest(path, collection, env, log), log, timeout)


def assert_clean(stderr: str, what: str) -> None:
    lowered = stderr.lower()
    assert "traceback" not in lowered and "lock" not in lowered and "error" not in lowered, f"{what}:\n{stderr}"


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def get_json(url: str, timeout: float = 5) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except urllib.error.HTTPError as exc:  # an OSError too: callers waiting for a server retry on it
        exc.close()
        raise


def post_json(url: str, body: dict[str, Any], timeout: float = 180) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"raw": raw.decode(errors="replace")}


@contextmanager
def rag_servers(*envs: dict[str, str], logs: list[Path]) -> Iterator[list[str]]:
    """``rag serve`` per environment, each on a free port; yields their base URLs once all answer /v1/models."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for env, log in zip(envs, logs, strict=True):
            port = free_port()
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        for proc, url, log in zip(procs, urls, logs, strict=True):
            deadline = time.monotonic() + 90
            while True:
                try:
                    get_json(f"{url}/v1/models", timeout=2)
                    break
                except OSError:
                    if proc.poll() is not None:
                        pytest.fail(f"`rag serve` exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
                    if time.monotonic() > deadline:
                        pytest.fail(f"`rag serve` did not answer within 90 s:\n{log.read_text(errors='replace')}")
                    time.sleep(0.25)
        yield urls
    finally:
        for proc in procs:
            stop(proc)


@contextmanager
def chroma_server(data: Path) -> Iterator[str]:
    """A real Chroma server (the `chroma` CLI chromadb ships) on 127.0.0.1, as in test_server_mode.py."""
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    if not Path(exe).exists():
        pytest.skip("the `chroma` CLI is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get_json(f"{url}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"chroma server exited with {proc.returncode}")
                if time.monotonic() > deadline:
                    pytest.fail("chroma server did not start within 60 s")
                time.sleep(0.3)
        yield url
    finally:
        stop(proc)


# -- what is stored -------------------------------------------------------------------------
_DENSE_CHECK = """
import json, sys
from rag.settings import Settings
from rag.store import Store
store = Store(Settings(home=sys.argv[1]))
col = store.collection(sys.argv[2])
got = col.get(include=["embeddings"])
found = col.query(query_embeddings=got["embeddings"], n_results=3, include=[])["ids"] if got["ids"] else []
print(json.dumps({"ids": len(got["ids"]), "unfindable": [c for c, hits in zip(got["ids"], found) if c not in hits]}))
"""


_SEARCH = """
import json, sys
from rag.retrieve import Retriever
from rag.settings import Settings
retriever = Retriever(Settings(home=sys.argv[1]), collection=sys.argv[2])
queries = json.loads(sys.argv[3])
print(json.dumps({
    system: [[e.chunk.doc_id for e in retriever.search(q, k=3, system=system)] for q in queries]
    for system in ("bm25", "hybrid", "dense")
}))
"""


def searched(env: dict[str, str], collection: str, queries: list[str]) -> dict[str, list[list[str]]]:
    """``{system: [the papers of the 3 best chunks, per query]}``, searched by a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _SEARCH, env["RAG_HOME"], collection, json.dumps(queries)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def dense_unfindable(env: dict[str, str], collection: str) -> list[str]:
    """Stored chunks that a dense query with their own vector does not find, asked by a fresh process (one
    that holds no vector index in memory from before)."""
    done = subprocess.run(
        [sys.executable, "-c", _DENSE_CHECK, env["RAG_HOME"], collection],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1])["unfindable"])


def assert_stored_exactly(store: Store, name: str, expected: dict[str, set[str]]) -> set[str]:
    """Chroma holds exactly the expected papers, each complete (one version, every chunk), and nothing else."""
    ids = store.chunk_ids(name)
    want = all_ids(expected)
    assert len(want) == sum(len(v) for v in expected.values())  # chunk ids are unique across papers
    assert ids == want, f"missing {len(want - ids)}, unexpected {len(ids - want)} chunk ids"
    (stats,) = store.stats(name)
    assert (stats.papers, stats.chunks) == (len(expected), len(want))
    versions = store.stored_versions(store.collection(name), sorted(expected))
    partial = {doc: v for doc, v in versions.items() if len(v) != 1 or any(n != m for n, m in v.values())}
    assert not partial, f"papers stored in part or in two versions: {partial}"
    assert {doc: sum(n for n, _ in v.values()) for doc, v in versions.items()} == {
        doc: len(c) for doc, c in expected.items()
    }
    return ids


def close_chroma_http(*stores: Store) -> None:
    """chromadb's HttpClient keeps httpx connection pools it never closes (two per client): close them, so
    no socket outlives the test."""
    for store in stores:
        client = store._client
        for owner in (client, getattr(client, "_admin_client", None)):  # the admin client has a pool of its own
            session = getattr(getattr(owner, "_server", None), "_session", None)
            if session is not None:
                session.close()


def lexical_of(settings: Settings, name: str) -> LexicalIndex:
    return open_lexical(settings, name)


def bm25_top(index: LexicalIndex, query: str, chunk_doc: dict[str, str], k: int = 3) -> list[str]:
    """The papers of the ``k`` best BM25 chunks, read straight from the index (no bringing it level)."""
    return [chunk_doc.get(h.chunk_id, h.chunk_id) for h in index.search(query, k)]


def chunk_docs(expected: dict[str, set[str]]) -> dict[str, str]:
    return {cid: doc for doc, ids in expected.items() for cid in ids}


# -- the tests ---------------------------------------------------------------------------------
def test_two_concurrent_writers_store_the_union_once(tmp_path):
    """Two `rag ingest` processes into one collection of one embedded store, started at once."""
    home, name = tmp_path / "home", "together"
    settings = settings_for(home)
    first, second = scifact(0, 150), scifact(150, 300)
    expected_a = write_slice(tmp_path / "a.jsonl", first, settings)
    expected_b = write_slice(tmp_path / "b.jsonl", second, settings)
    expected = {**expected_a, **expected_b}
    env = env_for(home, name)

    started = time.monotonic()
    procs = [
        start_ingest(tmp_path / "a.jsonl", name, env, tmp_path / "a.log"),
        start_ingest(tmp_path / "b.jsonl", name, env, tmp_path / "b.log"),
    ]
    try:
        reports = [finish(procs[0], tmp_path / "a.log", 300), finish(procs[1], tmp_path / "b.log", 300)]
    finally:
        for proc in procs:
            stop(proc)
    print(f"two writers: {time.monotonic() - started:.1f} s")

    for report, part in zip(reports, (expected_a, expected_b), strict=True):
        assert report["failed"] == [] and report["papers_added"] == len(part)
        assert report["chunks_added"] == len(all_ids(part)) and report["chunks_removed"] == 0

    ids = assert_stored_exactly(Store(settings), name, expected)
    lexical = lexical_of(settings, name)
    assert lexical.chunk_ids() == ids  # the writers kept it level themselves: no reader has fixed it up
    assert lexical.count() == len(ids)  # and holds each chunk once
    assert lexical.revision == Store(settings).revision(name)

    docs = chunk_docs(expected)
    for records in (first, second):
        for doc, title in list(titles(records).items())[:3]:
            assert doc in bm25_top(lexical, title, docs), f"BM25 misses {doc} ({title!r})"
    retriever = Retriever(settings, collection=name)
    for records in (first, second):
        doc, title = records[7]["doc_id"], records[7]["title"]
        assert doc in [e.chunk.doc_id for e in retriever.search(title, k=3, system="bm25")]
        assert doc in [e.chunk.doc_id for e in retriever.search(title, k=3, system="hybrid")]
    assert dense_unfindable(env, name) == []  # neither writer lost the other's vectors


_AT_ONCE = """
import json, sys, time
from rag.embed import make_embedder
from rag.settings import Settings
from rag.store import Store
what, root, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = Store(Settings(home=root))
embedder = make_embedder(store.settings)
if what == "collection":
    store.list_collections()  # the store exists already: only the collections are new
print("ready", flush=True)
start, out = float(sys.stdin.readline()), []
for i in range(rounds):
    time.sleep(max(0.0, start + i * 0.75 - time.time() - 0.02))  # woken together, then meet to the microsecond
    while time.time() < start + i * 0.75:
        pass
    try:
        if what == "store":  # a new RAG_HOME each round, opened as the first ingest into it does
            Store(Settings(home=f"{root}/home-{i}")).list_collections()
            out.append("ok")
        else:  # what Indexer.ingest does first
            out.append(store.collection_for_write(f"at-once-{i}", embedder).id.hex)
    except Exception as exc:
        out.append(f"{type(exc).__name__}: {exc}")
print(json.dumps(out), flush=True)
"""


def at_once(root: Path, what: str, rounds: int) -> list[list[str]]:
    """Two writer processes that do ``what`` ("store": open a new store; "collection": create a collection
    that does not exist yet) at the same instant, ``rounds`` times; each one's outcome per round."""
    env = env_for(root, "papers")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _AT_ONCE, what, str(root), str(rounds)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stderr is not None
            if proc.stdout.readline().strip() != "ready":
                proc.wait(timeout=60)
                pytest.fail(f"a writer failed before the start ({proc.returncode}):\n{proc.stderr.read()}")
        start = time.time() + 0.5
        for proc in procs:  # both hear the start time before either begins
            assert proc.stdin is not None
            proc.stdin.write(f"{start}\n")
            proc.stdin.flush()
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            stop(proc)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
    return results


def test_two_writers_opening_a_new_store_at_once(tmp_path):
    """Two first ingests into a new RAG_HOME open its embedded store at once: both must get it."""
    first, second = at_once(tmp_path, "store", rounds=10)
    failed = [(i, a, b) for i, (a, b) in enumerate(zip(first, second, strict=True)) if (a, b) != ("ok", "ok")]
    assert failed == [], f"opening a new store from two processes at once failed: {failed}"


def test_two_writers_creating_one_collection_at_once(tmp_path):
    """Two first ingests into a new collection both find none and create it: both must get the one
    collection (not an error for the second)."""
    Store(settings_for(tmp_path)).list_collections()  # the store exists; the collections do not
    first, second = at_once(tmp_path, "collection", rounds=10)
    differ = [(i, a, b) for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b or len(a) != 32]
    assert differ == [], f"creating a collection from two processes at once: {differ}"
    assert Store(settings_for(tmp_path)).list_collections() == sorted(f"at-once-{i}" for i in range(10))


def test_killed_writer_resumes_without_partial_papers(tmp_path):
    """`kill -9` an ingest after some steps are stored, then run it again to completion."""
    home, name = tmp_path / "home", "resumed"
    settings = settings_for(home)
    records = scifact(300, 800)
    expected = write_slice(tmp_path / "corpus.jsonl", records, settings)
    env = env_for(home, name, RAG_INGEST__GROUP_CHUNKS="64")
    store = Store(settings)

    started = time.monotonic()
    proc = start_ingest(tmp_path / "corpus.jsonl", name, env, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if store.chunk_ids(name):
                    break
            except RagError:  # the collection is not created yet
                pass
            assert proc.poll() is None, f"the ingest ended before it was killed ({proc.returncode})"
            assert time.monotonic() < deadline, "no chunk was stored within 180 s"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop(proc)
    assert proc.returncode == -signal.SIGKILL
    print(f"killed after {time.monotonic() - started:.1f} s")

    # what the killed run left: whole papers only, and a free writer lock
    at_kill = store.chunk_ids(name)
    assert 0 < len(at_kill) < len(all_ids(expected)), "the kill came too late to interrupt anything"
    assert at_kill <= all_ids(expected)
    versions = store.stored_versions(store.collection(name), sorted(expected))
    assert all(n == m for v in versions.values() for n, m in v.values()), "the kill left a paper in part"
    lexical = lexical_of(settings, name)
    with lexical.writer(wait=False) as lex:
        assert lex is not None, "the killed writer left the lexical writer lock held"

    again = run_ingest(tmp_path / "corpus.jsonl", name, env, tmp_path / "second.log", timeout=300)
    print(f"killed + resumed: {time.monotonic() - started:.1f} s")
    assert again["failed"] == []
    assert again["papers_unchanged"] == len(versions)  # what the killed run stored is not embedded again
    assert again["papers_added"] == len(expected) - len(versions)
    assert again["chunks_added"] == len(all_ids(expected)) - len(at_kill)

    ids = assert_stored_exactly(store, name, expected)
    retriever = Retriever(settings, collection=name)
    assert retriever.lexical().chunk_ids() == ids  # level with Chroma (brought level here if need be)
    assert lexical.count() == len(ids)
    assert lexical.revision == store.revision(name)
    probes = [records[0], records[len(records) // 2], records[-1]]
    found = searched(env, name, [r["title"] for r in probes])  # by a fresh process
    for system, tops in found.items():
        for record, top in zip(probes, tops, strict=True):
            assert record["doc_id"] in top, f"{system} misses {record['doc_id']}"
    assert dense_unfindable(env, name) == []

    # this process read the store while the killed writer ran: it must be able to search it now
    try:
        top = [e.chunk.doc_id for e in retriever.search(probes[0]["title"], k=3, system="dense")]
    except Exception as exc:  # chromadb InternalError: "Error creating hnsw segment reader: Nothing found on disk"
        pytest.fail(f"a process that read the embedded store during another process's ingest cannot search it: {exc}")
    assert probes[0]["doc_id"] in top, "a process that read the store during another's ingest searches stale vectors"


def test_ingest_while_serving_from_one_embedded_store(tmp_path):
    """`rag serve` keeps answering while `rag ingest` adds papers to the same embedded store, and then
    answers from the new papers without a restart."""
    home, name = tmp_path / "home", "live"
    settings = settings_for(home)
    seed, new = scifact(800, 850), scifact(850, 1050)
    expected = write_slice(tmp_path / "seed.jsonl", seed, settings)
    expected_new = write_slice(tmp_path / "new.jsonl", new, settings)
    env = env_for(home, name)
    run_ingest(tmp_path / "seed.jsonl", name, env, tmp_path / "seed.log")

    started = time.monotonic()
    log = tmp_path / "serve.log"
    with rag_servers(env, logs=[log]) as (url,):
        status, body = post_json(f"{url}/v1/answer", {"question": seed[0]["title"], "collection": name})
        assert status == 200 and seed[0]["doc_id"] in [s["doc_id"] for s in body["sources"]]

        outcomes: list[tuple[int, str]] = []
        done = threading.Event()

        def ask_in_a_loop() -> None:
            i = 0
            while not done.is_set():
                record = seed[i % len(seed)]
                try:
                    status, body = post_json(f"{url}/v1/answer", {"question": record["title"], "collection": name})
                    outcomes.append((status, "" if status == 200 else json.dumps(body)[:500]))
                except Exception as exc:  # a dropped connection is a failure too, reported below
                    outcomes.append((0, f"{type(exc).__name__}: {exc}"))
                i += 1
                done.wait(0.2)

        asker = threading.Thread(target=ask_in_a_loop)
        asker.start()
        try:
            report = run_ingest(tmp_path / "new.jsonl", name, env, tmp_path / "new.log")
        finally:
            done.set()
            asker.join(timeout=200)
        assert not asker.is_alive()
        print(f"{len(outcomes)} answers during the ingest, {time.monotonic() - started:.1f} s")
        assert report["papers_added"] == len(new) and report["failed"] == []
        assert len(outcomes) >= 3, "the server answered too few questions to overlap the ingest"
        assert [o for o in outcomes if o[0] != 200] == []

        # the running server answers from papers that arrived after it started
        asked = {}
        for record in (new[0], new[len(new) // 2], new[-1]):
            status, body = post_json(f"{url}/v1/answer", {"question": record["title"], "collection": name})
            assert status == 200, body
            asked[record["doc_id"]] = body
            bm25 = [e for e in body["evidence"] if e["chunk"]["doc_id"] == record["doc_id"] and e["bm25_score"]]
            assert bm25, f"BM25 in the server does not find the new paper {record['doc_id']}"

        # nothing lost or stored twice, and the lexical index level with Chroma
        ids = assert_stored_exactly(Store(settings), name, {**expected, **expected_new})
        assert lexical_of(settings, name).chunk_ids() == ids
        assert lexical_of(settings, name).count() == len(ids)
        assert dense_unfindable(env, name) == []

        server_log = "\n".join(line for line in log.read_text().splitlines() if " 200" not in line)
        assert_clean(server_log, "rag serve")

        # the server's dense search sees the new papers too (not only BM25)
        dense_misses = [
            doc
            for doc, body in asked.items()
            if not any(e["chunk"]["doc_id"] == doc and e["dense_score"] is not None for e in body["evidence"])
        ]
        assert dense_misses == [], (
            f"the running server's dense search does not find papers another process added: {dense_misses}"
        )
        uncited = [doc for doc, body in asked.items() if doc not in [s["doc_id"] for s in body["sources"]]]
        assert uncited == [], f"the running server does not cite the new papers asked about: {uncited}"


def test_two_servers_on_one_chroma_server(tmp_path):
    """Two hosts: each `rag serve` has its own RAG_HOME (and lexical index) over one Chroma server. Papers
    ingested and deleted from the first host's environment show up, and go, in the second's answers."""
    name = "shared-col"
    seed, new = scifact(1050, 1080), scifact(1080, 1140)
    with chroma_server(tmp_path / "chroma-data") as chroma_url:
        home_a, home_b = tmp_path / "host-a", tmp_path / "host-b"
        settings_a, settings_b = settings_for(home_a, chroma_url), settings_for(home_b, chroma_url)
        store_a, store_b = Store(settings_a), Store(settings_b)
        try:
            expected = write_slice(tmp_path / "seed.jsonl", seed, settings_a)
            expected_new = write_slice(tmp_path / "new.jsonl", new, settings_a)
            env_a, env_b = env_for(home_a, name, chroma_url), env_for(home_b, name, chroma_url)
            run_ingest(tmp_path / "seed.jsonl", name, env_a, tmp_path / "seed.log")
            logs = [tmp_path / "serve-a.log", tmp_path / "serve-b.log"]

            started = time.monotonic()
            with rag_servers(env_a, env_b, logs=logs) as (url_a, url_b):

                def ask(url: str, record: dict[str, Any]) -> dict[str, Any]:
                    status, body = post_json(f"{url}/v1/answer", {"question": record["title"], "collection": name})
                    assert status == 200, body
                    return body

                def cited(body: dict[str, Any]) -> list[str]:
                    return [s["doc_id"] for s in body["sources"]]

                def found_by(body: dict[str, Any], doc: str) -> set[str]:
                    hits = [e for e in body["evidence"] if e["chunk"]["doc_id"] == doc]
                    return {"bm25" for e in hits if e["bm25_score"] is not None} | {
                        "dense" for e in hits if e["dense_score"] is not None
                    }

                for url in (url_a, url_b):  # both answer from the seed (B builds its lexical index from Chroma)
                    assert seed[3]["doc_id"] in cited(ask(url, seed[3]))

                report = run_ingest(tmp_path / "new.jsonl", name, env_a, tmp_path / "new.log")
                assert report["papers_added"] == len(new)
                ids = assert_stored_exactly(store_a, name, {**expected, **expected_new})
                lexical_b = lexical_of(settings_b, name)
                assert not (lexical_b.chunk_ids() >= ids)  # host B's index has not seen the ingest yet

                for record in (new[0], new[len(new) // 2], new[-1]):
                    body = ask(url_b, record)
                    assert record["doc_id"] in cited(body)
                    assert found_by(body, record["doc_id"]) == {"bm25", "dense"}
                # server B brought its own lexical index level from Chroma (read here straight from disk)
                assert lexical_b.chunk_ids() == ids
                assert lexical_b.revision == store_b.revision(name)
                assert new[5]["doc_id"] in bm25_top(lexical_b, new[5]["title"], chunk_docs(expected_new))

                gone = new[len(new) // 2]
                deleted = subprocess.run(
                    [*CLI, "delete", gone["doc_id"], "-c", name], env=env_a, capture_output=True, text=True, timeout=120
                )
                assert deleted.returncode == 0, deleted.stderr
                assert f"Removed {len(expected_new[gone['doc_id']])} chunks" in deleted.stderr
                body = ask(url_b, gone)
                assert gone["doc_id"] not in cited(body)
                assert found_by(body, gone["doc_id"]) == set()
                left = ids - expected_new[gone["doc_id"]]
                assert store_b.chunk_ids(name) == left
                assert lexical_b.chunk_ids() == left  # server B removed the paper from its index too
                assert new[0]["doc_id"] in cited(ask(url_a, new[0]))  # host A answers as well
                print(f"two servers: {time.monotonic() - started:.1f} s")
        finally:
            close_chroma_http(store_a, store_b)
        for log in logs:
            assert_clean("\n".join(line for line in log.read_text().splitlines() if " 200" not in line), "rag serve")
