"""The query adapter's fit: its gradient is the loss's, and fitting moves questions toward their gold chunks."""

from __future__ import annotations

import numpy as np

from evals.fit_adapter import adapted, fit, loss_and_grad


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
