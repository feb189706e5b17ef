"""Ingest into Chroma: counts, idempotence, resume, replacement, and no loss on bad input."""

import json

import pytest

from rag.errors import CollectionNotFoundError, EmbedderMismatchError, InputError
from rag.indexing import Indexer
from rag.settings import Settings
from rag.store import Store


def ids_and_hashes(store, name):
    got = store.collection(name).get(include=["metadatas"])
    return sorted(zip(got["ids"], [m["paper_hash"] for m in got["metadatas"]], strict=True))


def test_ingest_slice_then_reingest_adds_nothing(settings, scifact_slice):
    store = Store(settings)
    first = Indexer(store).ingest([scifact_slice], collection="sci")
    assert first.papers_added == 30 and first.failed == [] and first.chunks_added >= 30
    (stats,) = store.stats("sci")
    assert stats.papers == 30 and stats.chunks == first.chunks_added
    before = ids_and_hashes(store, "sci")
    rev = store.revision("sci")

    again = Indexer(Store(settings)).ingest([scifact_slice], collection="sci")
    assert again.papers_unchanged == 30 and again.papers_added == 0 and again.chunks_added == 0
    assert ids_and_hashes(store, "sci") == before
    assert store.revision("sci") == rev  # nothing changed, derived indexes stay valid


def test_stored_chunks_carry_paper_metadata(settings, scifact_slice):
    store = Store(settings)
    Indexer(store).ingest([scifact_slice], collection="sci")
    first_record = json.loads(scifact_slice.read_text().splitlines()[0])
    got = store.collection("sci").get(where={"doc_id": first_record["doc_id"]}, include=["metadatas", "documents"])
    metas = sorted(got["metadatas"], key=lambda m: m["index"])
    assert metas[0]["title"] == first_record["title"]
    assert [m["index"] for m in metas] == list(range(metas[0]["n_chunks"]))
    assert all(m["source"].startswith(str(scifact_slice)) for m in metas)
    assert first_record["abstract"][:80] in " ".join(got["documents"])


def test_interrupted_ingest_resumes_without_duplicates(settings, scifact_slice, monkeypatch):
    settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"group_chunks": 8})})
    store = Store(settings)
    calls = {"n": 0}
    real_write = Store.write_chunks

    def crash_on_third_write(self, col, chunks, vectors):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # what Ctrl-C looks like mid-ingest
        real_write(self, col, chunks, vectors)

    monkeypatch.setattr(Store, "write_chunks", crash_on_third_write)
    with pytest.raises(KeyboardInterrupt):
        Indexer(store).ingest([scifact_slice], collection="sci")
    monkeypatch.setattr(Store, "write_chunks", real_write)
    partial = store.stats("sci")[0]
    assert 0 < partial.papers < 30

    resumed = Indexer(Store(settings)).ingest([scifact_slice], collection="sci")
    assert resumed.papers_unchanged == partial.papers  # finished papers are not embedded again
    clean = Indexer(Store(Settings(home=settings.home / "clean"))).ingest([scifact_slice], collection="sci")
    assert ids_and_hashes(Store(settings), "sci") == ids_and_hashes(
        Store(Settings(home=settings.home / "clean")), "sci"
    )
    assert Store(settings).stats("sci")[0].chunks == clean.chunks_added


def test_changed_file_replaces_its_old_chunks(settings, tmp_path):
    path = tmp_path / "note.txt"
    path.write_text("Calcium study\n\nVitamin D raised bone density in older women.", encoding="utf-8")
    store = Store(settings)
    Indexer(store).ingest([path], collection="notes")
    old = ids_and_hashes(store, "notes")
    path.write_text("Calcium study\n\nVitamin D did not change bone density in younger men.", encoding="utf-8")
    report = Indexer(store).ingest([path], collection="notes")
    assert report.papers_updated == 1 and report.chunks_removed == len(old)
    new = ids_and_hashes(store, "notes")
    assert set(new).isdisjoint(old) and store.stats("notes")[0].papers == 1
    docs = store.collection("notes").get()["documents"]
    assert any("younger men" in d for d in docs) and not any("older women" in d for d in docs)


def test_bad_inputs_are_reported_and_nothing_stored_is_lost(settings, scifact_slice, tmp_path):
    store = Store(settings)
    Indexer(store).ingest([scifact_slice], collection="sci")
    before = ids_and_hashes(store, "sci")
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (bad_dir / "empty.txt").write_bytes(b"")
    (bad_dir / "broken.pdf").write_bytes(b"%PDF-1.7 truncated")
    (bad_dir / "latin.md").write_bytes("# Título\n\nDensidad ósea".encode("latin-1"))
    (bad_dir / "records.jsonl").write_text('{"doc_id": "new:1", "title": "New", "abstract": "Fresh text."}\n{oops\n')
    # the same corpus again, now with one record corrupted: its stored version must survive
    lines = scifact_slice.read_text().splitlines()
    lines[0] = lines[0][:50]
    (bad_dir / "corpus.jsonl").write_text("\n".join(lines) + "\n")

    report = Indexer(store).ingest([bad_dir], collection="sci")
    reasons = {f.source.rsplit("/", 1)[-1]: f.error for f in report.failed}
    assert reasons == {
        "broken.pdf": "CorruptFileError",
        "corpus.jsonl:1": "RecordError",
        "empty.txt": "EmptyInputError",
        "latin.md": "TextEncodingError",
        "records.jsonl:2": "RecordError",
    }
    assert report.papers_added == 1 and report.papers_unchanged == 29
    after = ids_and_hashes(store, "sci")
    assert set(before) <= set(after) and len(after) == len(before) + report.chunks_added


def test_duplicate_doc_ids_are_skipped_with_a_reason(settings, scifact_slice, tmp_path):
    copy = tmp_path / "copy.jsonl"
    copy.write_text(scifact_slice.read_text().splitlines()[0] + "\n")
    report = Indexer(Store(settings)).ingest([scifact_slice, copy], collection="sci")
    assert report.papers_added == 30 and len(report.skipped) == 1
    assert "already read from" in report.skipped[0].reason


def test_unknown_collection_and_bad_name(settings):
    store = Store(settings)
    with pytest.raises(CollectionNotFoundError, match="'nope' does not exist"):
        store.stats("nope")
    with pytest.raises(InputError, match="collection: invalid name 'x'"):
        Indexer(store).ingest([], collection="x")


def test_embedder_mismatch_is_refused(settings, tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("Bone study\n\nVitamin D and bones.", encoding="utf-8")
    Indexer(Store(settings)).ingest([path], collection="notes")
    exact = Settings.preset("exact", home=settings.home)
    with pytest.raises(EmbedderMismatchError, match="was built with 'local:minilm-l6-int8-dynq'"):
        Indexer(Store(exact)).ingest([path], collection="notes")
    # queries still use the collection's own embedder, whatever is configured
    store = Store(exact)
    assert store.embedder_for(store.collection("notes")).name == "local:minilm-l6-int8-dynq"


def test_delete_papers_and_collection(settings, scifact_slice):
    store = Store(settings)
    Indexer(store).ingest([scifact_slice], collection="sci")
    doc_id = json.loads(scifact_slice.read_text().splitlines()[0])["doc_id"]
    rev = store.revision("sci")
    assert store.delete_papers([doc_id], "sci") >= 1
    assert store.stats("sci")[0].papers == 29 and store.revision("sci") != rev
    store.delete_collection("sci")
    assert "sci" not in store.list_collections()


def test_indexer_reports_progress_events(settings, scifact_slice, tmp_path):
    from rag.types import IngestProgress

    note = tmp_path / "note.txt"
    note.write_text("Bone study\n\nVitamin D supplementation and bone mineral density in older adults.")
    events: list[IngestProgress] = []
    report = Indexer(Store(settings)).ingest([scifact_slice, note], collection="sci", on_progress=events.append)
    reads = [e for e in events if e.stage == "read"]
    embeds = [e for e in events if e.stage == "embed"]
    assert [(e.done, e.total) for e in reads] == [(0, 2), (1, 2), (2, 2)]  # the bar shows before the first file
    assert embeds and embeds[-1].done == embeds[-1].total == report.chunks_added
    # totals grow as papers are read (reading and embedding overlap), and never fall behind what is done
    assert [e.tokens_total for e in embeds] == sorted(e.tokens_total for e in embeds)
    assert embeds[-1].tokens_total == report.tokens_embedded and all(e.done <= e.total for e in embeds)
    assert embeds[-1].tokens_done == report.tokens_embedded  # the bar ends full
    assert [e.done for e in embeds] == sorted(e.done for e in embeds)
    again: list[IngestProgress] = []
    Indexer(Store(settings)).ingest([scifact_slice, note], collection="sci", on_progress=again.append)
    assert {e.stage for e in again} == {"read"}  # nothing new to embed
