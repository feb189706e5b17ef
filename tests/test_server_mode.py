"""Server mode: a real Chroma server (the `chroma` CLI that chromadb ships) on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rag.errors import StoreUnavailableError
from rag.indexing import Indexer
from rag.settings import Settings
from rag.store import Store
from tests.conftest import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    if not Path(exe).exists():
        pytest.skip("the `chroma` CLI is not installed")
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [exe, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"chroma server exited with {proc.returncode}")
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("chroma server did not start within 60 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_ingest_and_query_through_a_chroma_server(chroma_server, tmp_path, scifact_slice, monkeypatch):
    monkeypatch.setenv("RAG_CHROMA_URL", chroma_server)
    settings = Settings(home=tmp_path / "home")
    assert settings.chroma_url == chroma_server
    store = Store(settings)
    report = Indexer(store).ingest([scifact_slice], collection="remote")
    assert report.papers_added == 30 and report.failed == []
    assert not (tmp_path / "home" / "chroma").exists()  # nothing written to the embedded store

    again = Indexer(Store(settings)).ingest([scifact_slice], collection="remote")
    assert again.papers_unchanged == 30 and again.chunks_added == 0
    (stats,) = Store(settings).stats("remote")
    assert stats.papers == 30 and stats.chunks == report.chunks_added

    col = store.collection("remote")
    first = next(store.iter_chunks("remote"))
    hits = col.query(query_embeddings=store.embedder_for(col).embed([first.text]), n_results=1)
    assert hits["ids"][0] == [first.chunk_id]


def test_bm25_index_follows_the_server_collection(chroma_server, tmp_path, monkeypatch):
    import json

    from rag.retrieve import Retriever

    monkeypatch.setenv("RAG_CHROMA_URL", chroma_server)
    settings = Settings(home=tmp_path / "home")
    store = Store(settings)
    path = tmp_path / "papers.jsonl"
    path.write_text(json.dumps({"doc_id": "s:1", "title": "Axolotl", "abstract": "Axolotl limb regeneration."}) + "\n")
    Indexer(store).ingest([path], collection="remote-bm25")
    retriever = Retriever(settings, collection="remote-bm25")
    assert retriever.search("axolotl regeneration", system="bm25")[0].chunk.doc_id == "s:1"
    path.write_text(json.dumps({"doc_id": "s:1", "title": "Newt", "abstract": "Newt tail regrowth."}) + "\n")
    Indexer(store).ingest([path], collection="remote-bm25")
    assert retriever.search("axolotl regeneration", system="bm25") == []
    assert retriever.search("newt tail regrowth", system="bm25")[0].chunk.doc_id == "s:1"
    store.delete_papers(["s:1"], "remote-bm25")
    assert retriever.search("newt tail regrowth", system="bm25") == []


def test_unreachable_server_is_a_clear_error(tmp_path):
    settings = Settings(home=tmp_path, chroma_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreUnavailableError, match="Cannot reach the Chroma server"):
        Store(settings).list_collections()
