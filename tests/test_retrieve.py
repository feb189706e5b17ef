"""Hybrid retrieval on a small real slice: ranking, filters, diversity, index consistency."""

import json

import numpy as np
import pytest

from rag.adapters import LangChainEmbeddings, LangChainRetriever
from rag.errors import InputError
from rag.indexing import Indexer
from rag.lang.asks import question_form
from rag.retrieve import Retriever, chroma_where, query_adapters
from rag.settings import RetrieveSettings, Settings
from rag.store import Store
from rag.types import Filters
from tests.conftest import head_lines, shared


@pytest.fixture
def store(settings, scifact_slice):
    store = Store(settings)
    Indexer(store).ingest([scifact_slice], collection="sci")
    return store


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("system", ["hybrid", "bm25", "dense"])
def test_a_papers_own_title_finds_it_first(store, scifact_slice, system):
    recs = records(scifact_slice)
    retriever = Retriever(store=store, collection="sci")
    hits = 0
    for rec in recs[:10]:
        ranked = retriever.rank_papers(rec["title"], k=5, system=system)
        hits += ranked[0][0] == rec["doc_id"]
    assert hits >= 9


def test_evidence_carries_scores_and_is_diverse(store):
    retriever = Retriever(store=store, collection="sci")
    evidence = retriever.search("white matter diffusion in preterm infants", k=8)
    assert [e.rank for e in evidence] == list(range(1, len(evidence) + 1))
    assert all(e.score >= evidence[-1].score for e in evidence)
    assert any(e.dense_score is not None and e.bm25_score is not None for e in evidence)
    per_paper = {}
    for e in evidence:
        per_paper[e.chunk.doc_id] = per_paper.get(e.chunk.doc_id, 0) + 1
    assert max(per_paper.values()) <= store.settings.retrieve.per_paper


def test_spread_caps_a_paper_while_others_can_fill_the_list():
    from rag.retrieve import spread
    from rag.types import Chunk

    def item(doc, i):
        return {
            "chunk": Chunk(chunk_id=f"{doc}{i}", doc_id=doc, text="t", index=i, n_chunks=9, n_tokens=1, paper_hash="h")
        }

    fused = [item("a", 0), item("a", 1), item("a", 2), item("b", 0), item("a", 3), item("c", 0)]
    assert [it["chunk"].chunk_id for it in spread(fused, 4, 2)] == ["a0", "a1", "b0", "c0"]
    # the other papers cannot fill six: the chunks the cap passed over follow, in their order
    assert [it["chunk"].chunk_id for it in spread(fused, 6, 2)] == ["a0", "a1", "b0", "c0", "a2", "a3"]
    # one paper only: the cap leaves room, its third chunk comes next
    assert [it["chunk"].chunk_id for it in spread(fused[:3], 4, 2)] == ["a0", "a1", "a2"]


def test_doc_id_and_year_filters(store, scifact_slice, tmp_path):
    recs = records(scifact_slice)
    retriever = Retriever(store=store, collection="sci")
    wanted = [recs[3]["doc_id"], recs[7]["doc_id"]]
    for system in ("hybrid", "bm25", "dense"):
        got = retriever.search("cells", k=10, filters=Filters(doc_ids=wanted), system=system)
        assert got and {e.chunk.doc_id for e in got} <= set(wanted)
    # SciFact has no years: a year filter leaves nothing, in both retrievers
    assert retriever.search("cells", filters=Filters(year_min=2000)) == []
    dated = tmp_path / "dated.jsonl"
    dated.write_text(
        json.dumps({"doc_id": "d:old", "title": "Bone loss", "abstract": "Bone loss in old mice.", "year": 1990})
        + "\n"
        + json.dumps({"doc_id": "d:new", "title": "Bone loss", "abstract": "Bone loss in young mice.", "year": 2020})
        + "\n"
    )
    Indexer(store).ingest([dated], collection="sci")
    got = Retriever(store=store, collection="sci").search(
        "bone loss mice", filters=Filters(year_min=2000, year_max=2021)
    )
    assert [e.chunk.doc_id for e in got] == ["d:new"]


def test_filtered_dense_search_is_chromas_filtered_search(tmp_path):
    """A year filter's dense search filters a wider unfiltered search itself and asks Chroma to filter only
    when too few pass; a filter to a few papers compares their own vectors: either way, the same chunks in the
    same order, with the same scores, as Chroma's own filtered search."""
    recs = head_lines(shared("scifact"), 200)
    for i, rec in enumerate(recs):
        rec["year"] = None if i % 10 == 9 else 1990 + i % 30  # some papers have no year: never inside a filter
    corpus = tmp_path / "dated.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in recs))
    home = tmp_path / "home"
    Indexer(Store(Settings(home=home))).ingest([corpus], collection="dated")
    col = Store(Settings(home=home)).collection("dated")
    assert col.count() > 100  # well above the 10 candidates, so the wider search is not the whole collection
    questions = [r["title"] for r in recs[::40]]
    filters = [
        Filters(year_min=1990),
        Filters(year_min=2005),
        Filters(year_min=2017),
        Filters(year_min=1995, year_max=1996),
        Filters(doc_ids=[recs[3]["doc_id"]]),
        Filters(doc_ids=[r["doc_id"] for r in recs[::7]]),
        Filters(doc_ids=[r["doc_id"] for r in recs[::7]], year_min=2000),
    ]
    # overfetch 1: a year filter nearly always falls back to Chroma's; 20: nearly never. exact_max_chunks 0:
    # papers always through Chroma's filter
    for overfetch, exact_max in ((1, 5000), (4, 0), (20, 5000)):
        opts = RetrieveSettings(
            candidates=10, k=10, per_paper=50, filter_overfetch=overfetch, exact_max_chunks=exact_max
        )
        retriever = Retriever(Settings(home=home, retrieve=opts), collection="dated")
        for f in filters:
            for q in questions:
                hits = retriever.search(q, filters=f, system="dense")
                want = col.query(
                    query_embeddings=retriever.query_vector(q),
                    n_results=10,
                    where=chroma_where(f),
                    include=["distances"],
                )
                where = f"overfetch {overfetch}, exact_max_chunks {exact_max}, {f}, {q!r}"
                assert [e.chunk.chunk_id for e in hits] == want["ids"][0], where
                # the exact path scores in numpy, Chroma in its own float32 kernels: equal to ~1e-6, not bitwise
                assert [e.score for e in hits] == pytest.approx([1 - d for d in want["distances"][0]], abs=1e-5), where
    with pytest.raises(InputError, match="no paper no:such-paper in collection 'dated'"):  # not an empty list
        retriever.search(questions[0], filters=Filters(doc_ids=[recs[3]["doc_id"], "no:such-paper"]))


def test_bm25_index_follows_ingest_reingest_and_delete(store, tmp_path):
    retriever = Retriever(store=store, collection="sci")
    query = "zebrafish regeneration of the axolotl heart"
    assert all(e.chunk.doc_id != "n:1" for e in retriever.search(query, system="bm25"))

    new = tmp_path / "new.jsonl"
    new.write_text(
        json.dumps({"doc_id": "n:1", "title": "Axolotl heart", "abstract": "Zebrafish and axolotl heart regeneration."})
        + "\n"
    )
    Indexer(store).ingest([new], collection="sci")
    assert retriever.search(query, system="bm25")[0].chunk.doc_id == "n:1"

    rev = store.revision("sci")
    Indexer(store).ingest([new], collection="sci")  # unchanged: the index is not rebuilt
    assert store.revision("sci") == rev and retriever.lexical().revision == rev

    new.write_text(json.dumps({"doc_id": "n:1", "title": "Newt limb", "abstract": "Limb regrowth in newts."}) + "\n")
    Indexer(store).ingest([new], collection="sci")
    assert all(e.chunk.doc_id != "n:1" for e in retriever.search(query, system="bm25"))
    assert retriever.search("newt limb regrowth", system="bm25")[0].chunk.doc_id == "n:1"

    store.delete_papers(["n:1"], "sci")
    assert all(e.chunk.doc_id != "n:1" for e in retriever.search("newt limb regrowth", system="bm25"))
    # the delete bypassed the lexical index (Chroma only): the next reader brought it level by id difference
    assert Retriever(store=store, collection="sci").lexical().revision == store.revision("sci")


async def test_async_search(store):
    evidence = await Retriever(store=store, collection="sci").asearch("infant brain development", k=3)
    assert len(evidence) == 3


def test_langchain_adapters(store, settings):
    retriever = LangChainRetriever(retriever=Retriever(store=store, collection="sci"), k=4)
    docs = retriever.invoke("infant brain white matter")
    assert len(docs) == 4 and docs[0].metadata["doc_id"] and docs[0].page_content
    emb = LangChainEmbeddings()
    assert len(emb.embed_query("bone")) == 384 and len(emb.embed_documents(["a", "b"])) == 2


def test_query_adapter_maps_the_query_by_form_and_only_for_its_embedder(store):
    """The query's vector goes through its form's bundled map (the chunks' stored vectors do not), switched
    off by a setting with no re-ingest, and never for an embedder it was not fitted on."""
    on = Retriever(store=store, collection="sci")
    off = Retriever(store.settings.model_copy(update={"retrieve": RetrieveSettings(query_adapter=False)}), "sci")
    maps = query_adapters(RetrieveSettings(), on.embedder.name)
    assert maps  # the default embedder has at least one fitted form
    for query in (
        "White matter diffusion is altered in preterm infants.",
        "Is white matter altered in preterm infants?",
    ):
        raw, mapped = off.query_vector(query), on.query_vector(query)
        assert np.allclose(raw, on.embedder.embed([query]))
        if question_form(query) not in maps:
            assert np.allclose(mapped, raw)
            continue
        assert float(np.linalg.norm(mapped)) == pytest.approx(1.0, abs=1e-5)
        assert 0.5 < float(raw[0] @ mapped[0]) < 0.999  # moved, but still the query
        assert on.search(query, k=3)
    assert query_adapters(RetrieveSettings(), "openai:text-embedding-3-small") == {}
    assert query_adapters(RetrieveSettings(query_adapter=False), on.embedder.name) == {}
