"""The query adapter's fit: its gradient is the loss's, and fitting moves questions toward their gold chunks."""

from __future__ import annotations

import numpy as np

from evals.fit_adapter import fit, fusion_check, loss_and_grad, misfiled
from rag.retrieve import adapted
from rag.types import Chunk


def _problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    docs = rng.normal(size=(40, 8)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    twist = np.linalg.qr(rng.normal(size=(8, 8)))[0].astype(np.float32)  # questions live in a rotated space
    gold = [np.array([i, i + 20]) for i in range(12)]
    queries = (docs[:12] + 0.2 * rng.normal(size=(12, 8)).astype(np.float32)) @ twist.T
    return queries.astype(np.float32), docs, gold


def test_gradient_matches_finite_differences():
    queries, docs, gold = _problem()
    w = np.eye(8, dtype=np.float64) + 0.05 * np.random.default_rng(1).normal(size=(8, 8))
    _, grad = loss_and_grad(w, queries.astype(np.float64), docs.astype(np.float64), gold)
    eps = 1e-6
    for i, j in [(0, 0), (3, 5), (7, 2)]:
        bump = np.zeros_like(w)
        bump[i, j] = eps
        up, _ = loss_and_grad(w + bump, queries.astype(np.float64), docs.astype(np.float64), gold)
        down, _ = loss_and_grad(w - bump, queries.astype(np.float64), docs.astype(np.float64), gold)
        assert abs((up - down) / (2 * eps) - grad[i, j]) < 1e-4


def test_fit_brings_questions_to_their_gold_and_regularisation_holds_it_near_identity():
    queries, docs, gold = _problem()
    train = {"toy": (list(range(12)), gold)}
    vectors = {"toy": ([], docs)}
    free, held = fit(queries, train, vectors, (0.0, 10.0), (300,))

    def top1_hits(w):
        sims = adapted(queries, w) @ docs.T
        return sum(int(np.argmax(s)) in g for s, g in zip(sims, gold, strict=True))

    before = top1_hits(np.eye(8, dtype=np.float32))
    assert top1_hits(free) > before
    assert np.abs(held - np.eye(8)).max() < np.abs(free - np.eye(8)).max()


def test_the_fusion_weight_is_chosen_again_under_out_of_fold_adapters():
    """BM25 ranks every gold chunk first and the dense side is noisy: every fold chooses a dense weight below
    the shipped 0.5 (at which the dense side can still outvote BM25), and choosing beats shipping 0.5."""
    queries, docs, _ = _problem()
    chunks = [
        Chunk(chunk_id=f"c{j}", doc_id=f"d{j}", text=f"t{j}", index=0, n_chunks=1, n_tokens=1, paper_hash=f"d{j}")
        for j in range(len(docs))
    ]
    rows = []
    for text in ("claim {} holds.", "does {} hold?"):
        for i in range(12):
            bm25 = [(i, 9.0), ((i + 1) % 40, 2.0), ((i + 2) % 40, 1.0)]
            items = [{"chunk": chunks[j], "bm25_score": s, "bm25_rank": r} for r, (j, s) in enumerate(bm25, start=1)]
            rows.append(
                {"protocol": "toy", "qid": f"{text}{i}", "split": "calib", "dataset": "toy"}
                | {"question": text.format(i), "gold": {f"d{i}"}, "items": items}
            )
    report = fusion_check(
        rows,
        {"toy": (chunks, docs)},
        np.vstack([queries, queries]),
        {"claim": (0.0, 50, "question"), "question": (0.0, 0, "question")},
        2,
        set(),
    )
    assert report["weights"] == [0.3, 0.4, 0.5, 0.6, 0.7] and len(report["chosen_per_fold"]) == 2
    assert all(c["claim"] < 0.5 and c["question"] < 0.5 for c in report["chosen_per_fold"])
    assert report["cv_estimate_of_choosing"] == 1.0 > report["shipped_out_of_fold"]


def test_a_dataset_weighing_lets_the_smaller_set_pull_as_hard_as_the_larger():
    """Two sets want different maps (the second's three questions turned another way, each with one gold chunk):
    counted by question the twelve outweigh the three; counted by dataset the three are fitted better."""
    queries, docs, gold = _problem()
    turn = np.linalg.qr(np.random.default_rng(2).normal(size=(8, 8)))[0]
    both = np.vstack([queries, queries[:3] @ turn]).astype(np.float32)
    train = {"big": (list(range(12)), gold), "small": ([12, 13, 14], [np.array([g[1]]) for g in gold[:3]])}
    vectors = {"big": ([], docs), "small": ([], docs)}
    by_question, by_dataset = fit(both, train, vectors, (0.0,), (300,), ("question", "dataset"))

    def small_loss(w):
        return loss_and_grad(w, both[12:], docs, train["small"][1])[0]

    assert small_loss(by_dataset) < small_loss(by_question)


def test_one_dataset_fits_once_for_both_weighings():
    queries, docs, gold = _problem()
    train = {"toy": (list(range(12)), gold)}
    maps = fit(queries, train, {"toy": ([], docs)}, (0.0, 1.0), (20, 40), ("question", "dataset"))
    assert len(maps) == 8 and all(a is b for a, b in zip(maps[:4], maps[4:], strict=True))


def test_questions_answered_elsewhere_are_the_ones_their_report_only_protocol_leaves_out():
    def row(qid, dataset, report_only=False):
        return {"qid": qid, "dataset": dataset, "report_only": report_only}

    rows = [row("s:1", "sqa"), row("s:2", "sqa"), row("s:1", "sqa", True), row("p:1", "pubmedqa")]
    assert misfiled(rows) == {"s:2"}  # a set with no report-only rows was never checked
