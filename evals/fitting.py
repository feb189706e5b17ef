"""The fitting code behind the shipped parameters (``rag/*.json``): small regressions by gradient descent."""

from __future__ import annotations

import numpy as np


def fit_logistic(
    X: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 6000, lr: float = 1.0
) -> tuple[float, np.ndarray]:
    """Plain L2-regularised logistic regression by gradient descent (a handful of features)."""
    w = np.zeros(X.shape[1])
    b = 0.0
    pos_weight = (len(y) - y.sum()) / max(y.sum(), 1)  # balance the classes
    sample_w = np.where(y == 1, pos_weight, 1.0)
    sample_w = sample_w / sample_w.mean()
    for _ in range(steps):
        z = X @ w + b
        p = 1 / (1 + np.exp(-z))
        g = (p - y) * sample_w
        w -= lr * (X.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return b, w


def fit_softmax(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int = 3,
    l2: float = 1e-3,
    steps: int = 20000,
    lr: float = 1.0,
    balanced: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """L2-regularised softmax regression by gradient descent (a dozen features); ``balanced``
    weights the classes equally (better macro-F1, worse accuracy)."""
    W = np.zeros((n_classes, X.shape[1]))
    b = np.zeros(n_classes)
    counts = np.bincount(y, minlength=n_classes).astype(float)
    sample_w = (len(y) / (n_classes * np.maximum(counts, 1)))[y] if balanced else np.ones(len(y))
    onehot = np.eye(n_classes)[y]
    for _ in range(steps):
        z = X @ W.T + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * sample_w[:, None]
        W -= lr * (g.T @ X / len(y) + l2 * W)
        b -= lr * g.mean(axis=0)
    return W, b
