"""Fetching the public data sets: verified downloads from a real local HTTP server."""

from __future__ import annotations

import http.server
import io
import json
import threading
import zipfile
from functools import partial

import pytest

from rag.datasets import SOURCES, Source, corpus_path, fetch, find_local, git_blob_sha1
from rag.errors import DatasetError
from rag.settings import Settings
from tests.conftest import shared


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_git_blob_hash_matches_git():
    assert git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_scifact_download_is_verified_and_converted_like_the_shared_copy(http_dir, tmp_path):
    raw = shared("scifact", "raw/corpus_train.csv")
    lines = raw.read_text(encoding="utf-8").splitlines(keepends=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("scifact/corpus_train.csv", "".join(lines[:1]) + _first_records(lines, 5))
    data = buf.getvalue()
    root, base = http_dir
    (root / "scifact.zip").write_bytes(data)
    source = Source(f"{base}/scifact.zip", git_blob_sha1(data), len(data), SOURCES["scifact"].convert)

    path = fetch("scifact", tmp_path / "cache", {"scifact": source})
    got = [json.loads(line) for line in path.read_text().splitlines()]
    expected = {r["doc_id"]: r for r in map(json.loads, shared("scifact").read_text().splitlines()[:5])}
    assert [r["doc_id"] for r in got] == list(expected)
    for rec in got:
        ref = expected[rec["doc_id"]]
        assert (rec["title"], rec["abstract"], rec["meta"]["sentences"]) == (
            ref["title"],
            ref["abstract"],
            ref["meta"]["sentences"],
        )
    # cached: a second call does not download again
    (root / "scifact.zip").unlink()
    assert fetch("scifact", tmp_path / "cache", {"scifact": source}) == path


def _first_records(lines: list[str], n: int) -> str:
    import csv

    body = "".join(lines[1:4000])
    rows = list(csv.reader(io.StringIO(body)))[:n]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_pubmedqa_download_is_converted_like_the_shared_copy(http_dir, tmp_path):
    raw = json.loads(shared("pubmedqa", "raw/ori_pqal.without_holdout.json").read_text())
    sample = dict(list(raw.items())[:3])
    data = json.dumps(sample, indent=4).encode()
    root, base = http_dir
    (root / "ori_pqal.json").write_bytes(data)
    source = Source(f"{base}/ori_pqal.json", git_blob_sha1(data), len(data), SOURCES["pubmedqa"].convert)
    path = fetch("pubmedqa", tmp_path / "cache", {"pubmedqa": source})
    got = [json.loads(line) for line in path.read_text().splitlines()]
    reference = {r["doc_id"]: r for r in map(json.loads, shared("pubmedqa").read_text().splitlines())}
    for rec in got:
        ref = reference[rec["doc_id"]]
        assert (rec["abstract"], rec["year"], rec["meta"]["sections"]) == (
            ref["abstract"],
            ref["year"],
            ref["meta"]["sections"],
        )


def test_checksum_mismatch_is_refused_and_nothing_cached(http_dir, tmp_path):
    root, base = http_dir
    (root / "x.json").write_bytes(b"{}")
    source = Source(f"{base}/x.json", "0" * 40, None, SOURCES["pubmedqa"].convert)
    with pytest.raises(DatasetError, match="checksum mismatch"):
        fetch("pubmedqa", tmp_path / "cache", {"pubmedqa": source})
    assert not (tmp_path / "cache" / "pubmedqa" / "corpus.jsonl").exists()


def test_unreachable_source_and_unknown_name(tmp_path):
    source = Source("http://127.0.0.1:9/nothing.json", "0" * 40, None, SOURCES["pubmedqa"].convert)
    with pytest.raises(DatasetError, match="Cannot download pubmedqa"):
        fetch("pubmedqa", tmp_path, {"pubmedqa": source}, timeout=5)
    with pytest.raises(DatasetError, match="Unknown data set"):
        fetch("nope", tmp_path)


def test_local_copy_wins(monkeypatch, tmp_path):
    folder = tmp_path / "data" / "toy"
    folder.mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"doc_id": "t:1", "abstract": "x"}\n')
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    data_dir = Settings().data_dir  # RAG_DATA_DIR reaches the code through the settings tree
    assert data_dir == tmp_path / "data"
    assert find_local("toy", data_dir=data_dir) == folder / "corpus.jsonl"
    assert corpus_path("toy", tmp_path / "cache", {}, data_dir=data_dir) == folder / "corpus.jsonl"
