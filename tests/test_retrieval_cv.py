"""The cross-validated choice of retrieval fusion (`evals.retrieval_cv`), on made candidate lists.

The full run over SciFact, PubMedQA and ScholarQA-Multi is `python -m evals.retrieval_cv` (minutes, not a test)."""

import ir_measures
from ir_measures import nDCG

from evals import retrieval_cv as cv
from rag.lang.asks import answer_shape
from rag.retrieve import fuse, papers_by_best_chunk
from rag.settings import RetrieveSettings
from rag.types import Chunk


def item(doc, dense=None, bm25=None):
    """A candidate of paper ``doc``; ``dense``/``bm25``: (score, rank) where that retriever found it."""
    chunk = Chunk(chunk_id=f"{doc}#0", doc_id=doc, text=doc, index=0, n_chunks=1, n_tokens=1, paper_hash=doc)
    out = {"chunk": chunk}
    if dense:
        out |= {"dense_score": dense[0], "dense_rank": dense[1]}
    if bm25:
        out |= {"bm25_score": bm25[0], "bm25_rank": bm25[1]}
    return out


def test_ndcg_is_trec_evals():
    ranked, gold = ["a", "x", "b", "y"], {"a", "b", "c"}
    qrels = [ir_measures.Qrel("q", d, 1) for d in gold]
    run = [ir_measures.ScoredDoc("q", d, -i) for i, d in enumerate(ranked)]
    expected = ir_measures.calc_aggregate([nDCG @ 10], qrels, run)[nDCG @ 10]
    assert abs(cv.ndcg10(ranked, gold) - expected) < 1e-9
    assert cv.ndcg10([], {"a"}) == 0.0 and cv.ndcg10(["a"], set()) == 0.0


def test_at_depth_keeps_what_a_shallower_fetch_would_have():
    items = [item("a", dense=(0.9, 1), bm25=(3.0, 30)), item("b", bm25=(2.0, 60)), item("c", dense=(0.5, 10))]
    kept = cv.at_depth(items, 50)
    assert [k["chunk"].doc_id for k in kept] == ["a", "c"]
    assert "bm25_score" in kept[0] and "dense_score" in kept[0]
    assert "bm25_score" not in cv.at_depth(items, 20)[0]


def test_fuse_is_what_rank_papers_returns():
    """The CV scores the very function the retriever runs: fused chunks to papers by their best chunk."""
    items = [
        item("a", dense=(0.9, 1), bm25=(1.0, 3)),
        item("b", dense=(0.2, 3), bm25=(9.0, 1)),
        item("c", dense=(0.5, 2)),
    ]
    heavy_dense = RetrieveSettings(dense_weight=0.9)
    assert next(d for d, _ in papers_by_best_chunk(fuse(items, heavy_dense))) == "a"
    assert next(d for d, _ in papers_by_best_chunk(fuse(items, RetrieveSettings(dense_weight=0.1)))) == "b"


def test_a_chunk_shaped_like_the_answer_gains_under_convex_fusion():
    """ "How many participants …?": the chunk with "24 participants" rises past a closer but countless one."""
    items = [
        item("a", dense=(0.9, 1), bm25=(5.0, 1)),
        item("b", dense=(0.85, 2), bm25=(4.8, 2)),
        item("c", dense=(0.5, 3), bm25=(1.0, 3)),
    ]
    items[1]["chunk"] = items[1]["chunk"].model_copy(update={"text": "We recruited 24 participants."})
    shape = answer_shape("How many participants took part?")
    assert [i["chunk"].doc_id for i in fuse(items, RetrieveSettings(), shape=shape)] == ["b", "a", "c"]
    assert [i["chunk"].doc_id for i in fuse(items, RetrieveSettings(shape_bonus=0.0), shape=shape)] == ["a", "b", "c"]
    assert [i["chunk"].doc_id for i in fuse(items, RetrieveSettings(fusion="rrf"), shape=shape)] == ["a", "b", "c"]
    assert [i["chunk"].doc_id for i in fuse(items, RetrieveSettings())] == ["a", "b", "c"]


def rows_where_bm25_knows():
    """Questions whose gold paper BM25 ranks first and the dense side ranks third, in two protocols."""
    rows = []
    for i in range(40):
        gold = f"g{i}"
        items = [
            item(gold, dense=(0.50, 3), bm25=(9.0, 1)),
            item(f"n{i}", dense=(0.90, 1), bm25=(2.0, 2)),
            item(f"m{i}", dense=(0.80, 2), bm25=(1.0, 3)),
        ]
        split = "calib" if i % 2 else "held"
        for protocol in ("p1", "p2"):
            rows.append({"protocol": protocol, "qid": f"q{i}", "split": split, "gold": {gold}, "items": items})
    return rows


def test_cross_validation_chooses_what_wins_and_reports_held_out_once():
    report = cv.run(rows_where_bm25_knows(), folds=4)
    assert report["chosen"]["fusion"] == "convex" and report["chosen"]["dense_weight"] <= 0.4
    assert all(c["fusion"] == "convex" and c["dense_weight"] <= 0.4 for c in report["chosen_per_fold"])
    assert report["cv_estimate_of_selection"] == 1.0 and report["default_calib_macro_ndcg@10"] < 1.0
    held = report["held_out"]
    assert set(held) == {"chosen", "default", "bm25", "dense", "rrf (k=60)"}
    assert held["chosen"]["p1"]["ndcg@10"] == 1.0 and held["chosen"]["p1"]["n"] == 20
    assert held["dense"]["p1"]["ndcg@10"] == 0.5 and held["bm25"]["p2"]["ndcg@10"] == 1.0
    text = cv.markdown(report)
    assert "Held-out splits (reported once)" in text and "| rrf (k=60) |" in text


def test_split_of_each_dataset():
    assert cv.split_of("scifact", {"qid": "1", "meta": {"official_split": "train"}}) == "calib"
    assert cv.split_of("scifact", {"qid": "1", "meta": {"official_split": "dev"}}) == "held"
    assert cv.split_of("pubmedqa", {"qid": "1", "meta": {"official_split": "cv"}}) == "calib"
    halves = {cv.split_of("scholarqa_multi", {"qid": f"q{i}"}) for i in range(20)}
    assert halves == {"calib", "held"}


def test_a_report_only_protocol_is_reported_but_never_chosen_on():
    """A subset of a dataset's questions is reported on its own, but counting it would weigh those twice."""
    rows = rows_where_bm25_knows()
    # the copy of p1 says the dense side wins: were it in the objective, the choice would lean dense
    copies = []
    for r in rows:
        if r["protocol"] == "p1":
            gold = {r["items"][1]["chunk"].doc_id}
            copies += [{**r, "protocol": "p1-on-question", "gold": gold, "report_only": True}] * 3
    report = cv.run(rows + copies, folds=4)
    assert report["chosen"]["dense_weight"] <= 0.4 and report["cv_estimate_of_selection"] == 1.0
    assert report["held_out"]["chosen"]["p1-on-question"]["n"] == 60
    assert cv.protocol_name("scholarqa_multi", "answer_on_question") == "scholarqa_multi-on-question"
    assert (
        cv.protocol_name("scifact", "gold") == "scifact-evidence" and cv.protocol_name("pubmedqa", "gold") == "pubmedqa"
    )
