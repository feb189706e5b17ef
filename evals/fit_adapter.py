"""A query adapter for the dense side: a linear map of the question's MiniLM vector, fitted on the
calibration questions' gold papers and chosen by the retrieval cross-validation (:mod:`evals.retrieval_cv`).

    python -m evals.fit_adapter [--out eval-out/retrieval-cv]

The stored chunk vectors do not change (no re-embedding, any existing collection benefits): only the
question's vector ``q`` becomes ``normalise(q W)``. ``W`` starts at the identity and minimises, over the
calibration questions, the softmax loss of their gold papers' chunks among every chunk of their corpus
(temperature 1/``_SCALE``), plus ``lam * |W - I|^2`` to stay near the model. Plain numpy, full batch, Adam.

Questions whose gold answers another question (:func:`evals.retrieval.answered_elsewhere`) are scored but never
fitted on. Chosen by 5-fold CV on the calibration splits (the regularisation, the number of steps, and whether
every question or every dataset counts the same in the loss), objective
the mean over protocols of hybrid nDCG@10 with the shipped fusion; the held-out splits reported once.
Claims and questions (:func:`rag.lang.asks.question_form`) get a map each, fitted on their own rows and
chosen together (the identity is among the choices): SciFact's claims and the questions of PubMedQA and
ScholarQA-Multi are written differently, and a map that pays for one may not for the other.

The fusion's dense weight is then chosen again under the adapter by the same CV (``fusion_check``: per
form, 0.3-0.7, each calibration row scored with its form's map fitted without its fold) and reported beside
the shipped 0.5.

Each question's candidates come from :func:`evals.retrieval_cv.collect` with no adapter (cached in
``OUT/candidates.pkl``);
the dense side is then an exact search of the mapped vector over the stored ones, BM25's side as fetched,
fused by :func:`rag.retrieve.fuse` with the shipped settings. Writes ``OUT/fit_adapter.json`` and
``OUT/query_adapter_v1.json`` (copy it to ``rag/`` to ship it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from evals.retrieval_cv import at_depth, collect, cross_validate, fold_of, fused_ndcg, macro, per_protocol
from rag.embed import LocalEmbedder
from rag.lang.asks import FORMS, Form, question_form
from rag.params import ADAPTER_FILE, QueryAdapter
from rag.retrieve import System, adapted
from rag.settings import RetrieveSettings, Settings
from rag.store import Store, chunk_from_record
from rag.types import Chunk

_SCALE = 20.0  # inverse temperature on cosines: the sentence-transformers recipe MiniLM was trained with
_LR = 1e-3
LAMBDAS = (0.0, 1e-4, 1e-3, 1e-2)
STEPS = (50, 150, 400)
# how a form's datasets share the loss: every question the same, or every dataset the same (the CV objective
# counts each protocol once, and PubMedQA's 403 calibration questions would otherwise outweigh ScholarQA's 49)
WEIGHINGS = ("question", "dataset")
FUSION_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)  # the dense weights tried again under the adapter (0.5 ships)
Vectors = tuple[list[Chunk], np.ndarray]  # a dataset's chunks and their stored vectors, row for row
Config = tuple[float, int, str]  # (lam, steps, weighing); steps 0 is the identity


def rows_and_vectors(out: Path, settings: Settings) -> tuple[list[dict[str, Any]], dict[str, Vectors], str]:
    """The CV rows (cached in ``out``), each dataset's chunks beside the vectors its collection stores
    (L2-normalised), read in one pass, and the name of the embedder that made them."""
    cache = out / "candidates.pkl"
    if cache.exists():
        rows = pickle.loads(cache.read_bytes())
    else:
        rows = collect(settings.data_dir, settings, None)
        out.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(rows))
    store = Store(settings)
    vectors: dict[str, Vectors] = {}
    for dataset in sorted({r["dataset"] for r in rows}):
        got = store.collection(dataset).get(include=["documents", "metadatas", "embeddings"])
        chunks = [
            chunk_from_record(cid, doc or "", dict(meta or {}))
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        ]
        matrix = np.asarray(got["embeddings"], dtype=np.float32)
        vectors[dataset] = (chunks, matrix / np.linalg.norm(matrix, axis=1, keepdims=True))
    return rows, vectors, store.embedder_for(store.collection(rows[0]["dataset"])).name


def dense_swapped(
    rows: list[dict[str, Any]], corpora: dict[str, Vectors], queries: np.ndarray
) -> list[list[dict[str, Any]]]:
    """Each row's candidates with the dense side an exact search of ``queries`` (one vector per row) over
    its dataset's chunk vectors; BM25's side as cached."""
    depth = max(max(it.get("dense_rank") or 0, it.get("bm25_rank") or 0) for it in rows[0]["items"])
    swapped: list[list[dict[str, Any]]] = [[] for _ in rows]
    for dataset, (chunks, matrix) in corpora.items():
        idx = [i for i, r in enumerate(rows) if r["dataset"] == dataset]
        sims = queries[idx] @ matrix.T
        for row_i, s in zip(idx, sims, strict=True):
            top = np.argsort(-s, kind="stable")[:depth]
            items = {
                chunks[j].chunk_id: {"chunk": chunks[j], "dense_score": float(s[j]), "dense_rank": rank}
                for rank, j in enumerate(top, start=1)
            }
            for it in rows[row_i]["items"]:
                if it.get("bm25_rank") is not None:
                    kept = items.setdefault(it["chunk"].chunk_id, {"chunk": it["chunk"]})
                    kept.update(bm25_score=it["bm25_score"], bm25_rank=it["bm25_rank"])
            swapped[row_i] = list(items.values())
    return swapped


def ndcgs(
    rows: list[dict[str, Any]],
    candidates: list[list[dict[str, Any]]],
    system: System = "hybrid",
    opts: RetrieveSettings | None = None,
) -> list[float]:
    """nDCG@10 per row, candidates cut to the depth of ``opts`` (the shipped settings) and fused by them."""
    opts = opts or RetrieveSettings()
    out = []
    for r, items in zip(rows, candidates, strict=True):
        kept = [it for it in at_depth(items, opts.candidates) if system == "hybrid" or f"{system}_score" in it]
        out.append(fused_ndcg(kept, opts, system, r["gold"]))
    return out


def examples(rows: list[dict[str, Any]], keep: Any, vectors: dict[str, Vectors]) -> dict:
    """Per dataset: the admitted rows' indices and, per row, the corpus positions of its gold chunks."""
    out: dict[str, tuple[list[int], list[np.ndarray]]] = {}
    positions = {d: _doc_positions(chunks) for d, (chunks, _) in vectors.items()}
    seen = set()
    for i, r in enumerate(rows):
        key = (r["qid"], frozenset(r["gold"]))
        if not keep(r) or key in seen:
            continue
        seen.add(key)
        pos = [j for doc in r["gold"] for j in positions[r["dataset"]].get(doc, [])]
        if pos:
            idx, gold = out.setdefault(r["dataset"], ([], []))
            idx.append(i)
            gold.append(np.asarray(pos))
    return out


def _doc_positions(chunks: list[Chunk]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for j, c in enumerate(chunks):
        out.setdefault(c.doc_id, []).append(j)
    return out


def loss_and_grad(w: np.ndarray, q: np.ndarray, docs: np.ndarray, gold: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """Mean negative log of the softmax mass on each question's gold chunks, and its gradient in ``w``."""
    u = q @ w
    norm = np.linalg.norm(u, axis=1, keepdims=True)
    z = u / norm
    s = _SCALE * z @ docs.T
    s -= s.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    r = np.zeros_like(p)
    loss = 0.0
    for i, g in enumerate(gold):
        mass = p[i, g].sum()
        loss -= np.log(max(mass, 1e-30))
        r[i, g] = p[i, g] / max(mass, 1e-30)
    dz = _SCALE * (p - r) @ docs
    du = (dz - (dz * z).sum(axis=1, keepdims=True) * z) / norm
    return loss / len(gold), q.T @ du / len(gold)


def fit(
    queries: np.ndarray,
    train: dict,
    vectors: dict,
    lambdas: tuple[float, ...],
    steps: tuple[int, ...],
    weighings: tuple[str, ...] = ("question",),
) -> list[np.ndarray]:
    """``W`` by full-batch Adam from the identity, per weighing in ``weighings`` (see ``WEIGHINGS``) and
    regularisation in ``lambdas``, after each number of ``steps`` (one trajectory per pair), in that order.
    A weighing that gives the datasets the same shares as an earlier one (one dataset, or datasets of one size) is
    the same loss: it reuses that weighing's maps."""
    fitted: dict[tuple[tuple[str, float], ...], list[np.ndarray]] = {}
    out: list[np.ndarray] = []
    for weighing in weighings:
        shares = _shares(train, weighing)
        key = tuple(sorted(shares.items()))
        if key not in fitted:
            fitted[key] = [w for lam in lambdas for w in _trajectory(queries, train, vectors, lam, steps, shares)]
        out += fitted[key]
    return out


def _shares(train: dict, weighing: str) -> dict[str, float]:
    """Each dataset's share of the loss under ``weighing``."""
    total = sum(len(idx) for idx, _ in train.values())
    return {d: len(idx) / total if weighing == "question" else 1 / len(train) for d, (idx, _) in train.items()}


def _trajectory(
    queries: np.ndarray, train: dict, vectors: dict, lam: float, steps: tuple[int, ...], shares: dict[str, float]
) -> list[np.ndarray]:
    dim = queries.shape[1]
    w, eye = np.eye(dim, dtype=np.float32), np.eye(dim, dtype=np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    snapshots = []
    for t in range(1, max(steps) + 1):
        grad = 2 * lam * (w - eye)
        for dataset, (idx, gold) in train.items():
            _, g = loss_and_grad(w, queries[idx], vectors[dataset][1], gold)
            grad += g * shares[dataset]
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w = w - _LR * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        if t in steps:
            snapshots.append(w.copy())
    return snapshots


def _fold_table(
    rows: list[dict[str, Any]],
    vectors: dict,
    queries: np.ndarray,
    configs: list[Config],
    folds: int,
    elsewhere: set[str],
) -> list[list[float]]:
    """Per configuration, each calibration row's nDCG@10 under the adapter of its form fitted without its fold
    (the identity, ``steps`` 0, last)."""
    table: list[list[float]] = [[0.0] * len(rows) for _ in configs]
    for f, form in itertools.product(range(folds), FORMS):
        ours = [i for i, r in enumerate(rows) if r["split"] == "calib" and question_form(r["question"]) == form]
        train = _training(rows, vectors, form, elsewhere, (f, folds))
        scored = [i for i in ours if fold_of(rows[i], folds) == f]
        sub = [rows[i] for i in scored]
        maps = [*fit(queries, train, vectors, LAMBDAS, STEPS, WEIGHINGS), np.eye(queries.shape[1], dtype=np.float32)]
        for c, w in enumerate(maps):
            values = ndcgs(sub, dense_swapped(sub, vectors, adapted(queries[scored], w)))
            for i, v in zip(scored, values, strict=True):
                table[c][i] = v
            print(f"fold {f} {form} {configs[c]}: {float(np.mean(values)):.4f} over {len(sub)}", flush=True)
    return table


def fusion_check(
    rows: list[dict[str, Any]],
    vectors: dict,
    queries: np.ndarray,
    chosen: dict[Form, Config],
    folds: int,
    elsewhere: set[str],
) -> dict[str, Any]:
    """The fusion's dense weight chosen again under the adapter, per form, by the same CV: each calibration row
    scored with its form's chosen map fitted without the row's fold, at every weight of ``FUSION_WEIGHTS``."""
    table: list[list[float]] = [[0.0] * len(rows) for _ in FUSION_WEIGHTS]
    for f, form in itertools.product(range(folds), FORMS):
        lam, steps, weighing = chosen[form]
        scored = [i for i, r in enumerate(rows) if _calib_of(r, form) and fold_of(r, folds) == f]
        sub = [rows[i] for i in scored]
        w = np.eye(queries.shape[1], dtype=np.float32)
        if steps:
            train = _training(rows, vectors, form, elsewhere, (f, folds))
            w = fit(queries, train, vectors, (lam,), (steps,), (weighing,))[0]
        candidates = dense_swapped(sub, vectors, adapted(queries[scored], w))
        for c, weight in enumerate(FUSION_WEIGHTS):
            values = ndcgs(sub, candidates, opts=RetrieveSettings(dense_weight=weight))
            for i, v in zip(scored, values, strict=True):
                table[c][i] = v
    pairs, combined = per_form(rows, table)
    cv = cross_validate(rows, combined, folds)
    shipped = FUSION_WEIGHTS.index(RetrieveSettings().dense_weight)
    return {
        "weights": list(FUSION_WEIGHTS),
        "cv_estimate_of_choosing": round(cv["estimate"], 4),
        "shipped_out_of_fold": round(macro(rows, combined[pairs.index((shipped, shipped))], _calibration), 4),
        "chosen_per_fold": [dict(zip(("claim", "question"), (FUSION_WEIGHTS[a] for a in pairs[c]), strict=True))
                            for c in cv["chosen_per_fold"]],
    }  # fmt: skip


def per_form(rows: list[dict[str, Any]], table: list[list[float]]) -> tuple[list[tuple[int, int]], list[list[float]]]:
    """Every (claims' choice, questions' choice) pair of ``table``'s rows, and per pair each row's value under
    its form's choice: the two forms are chosen together, on the macro."""
    is_claim = [question_form(r["question"]) == "claim" for r in rows]
    pairs = [(c, q) for c in range(len(table)) for q in range(len(table))]
    return pairs, [[table[c if claim else q][i] for i, claim in enumerate(is_claim)] for c, q in pairs]


def _calibration(row: dict[str, Any]) -> bool:
    return row["split"] == "calib"


def _calib_of(row: dict[str, Any], form: str) -> bool:
    """A calibration row of ``form`` to score (a report-only protocol's rows repeat other rows)."""
    return row["split"] == "calib" and question_form(row["question"]) == form and not row.get("report_only")


def _training(
    rows: list[dict[str, Any]], vectors: dict, form: str, elsewhere: set[str], without: tuple[int, int] | None = None
) -> dict:
    """The :func:`examples` a map of ``form`` is fitted on: its calibration rows, less those whose gold answers
    another question (``elsewhere``: they would teach the map to send their words to papers about something else)
    and, given ``without`` = (fold, folds), less that fold."""
    return examples(
        rows,
        lambda r: (
            _calib_of(r, form)
            and r["qid"] not in elsewhere
            and (without is None or fold_of(r, without[1]) != without[0])
        ),
        vectors,
    )


def misfiled(rows: list[dict[str, Any]]) -> set[str]:
    """The ids of the rows :func:`evals.retrieval.answered_elsewhere` found (a dataset's questions absent from its
    report-only ``answer_on_question`` protocol)."""
    on_question = {r["qid"] for r in rows if r.get("report_only")}
    checked = {r["dataset"] for r in rows if r.get("report_only")}
    return {r["qid"] for r in rows if r["dataset"] in checked and not r.get("report_only")} - on_question


def run(out: Path, folds: int = 5) -> dict[str, Any]:
    # the candidates are the retriever's without an adapter: the baseline the map is fitted against
    settings = Settings().with_retrieve(query_adapter=False)
    settings = settings.model_copy(update={"home": out / "store", "chroma_url": None})
    rows, vectors, embedder = rows_and_vectors(out, settings)
    queries = LocalEmbedder(settings.embed).embed([r["question"] for r in rows])
    elsewhere = misfiled(rows)  # scored, never fitted on
    configs = [(lam, steps, weighing) for weighing in WEIGHINGS for lam in LAMBDAS for steps in STEPS]
    configs.append((0.0, 0, WEIGHINGS[0]))
    cached = out / "fit_adapter_table.json"  # the folds' scores: the slow part, kept so a later step can be rerun
    keys = [f"{r['protocol']} {r['qid']}" for r in rows]  # the table is per row: valid for these rows only
    earlier = json.loads(cached.read_text()) if cached.exists() else {}
    if earlier.get("configs") == [list(c) for c in configs] and earlier.get("rows") == keys:
        table = earlier["table"]
    else:
        table = _fold_table(rows, vectors, queries, configs, folds, elsewhere)
        cached.write_text(json.dumps({"configs": configs, "rows": keys, "table": table}))
    # a configuration per form: the claims' and the questions' adapters are chosen together, on the macro
    pairs, combined = per_form(rows, table)
    cv = cross_validate(rows, combined, folds)
    calib = [macro(rows, t, _calibration) for t in combined]
    best = int(np.argmax(calib))
    identity = pairs.index((len(configs) - 1, len(configs) - 1))
    chosen = dict(zip(FORMS, (configs[pairs[best][1]], configs[pairs[best][0]]), strict=True))
    deltas = {}
    for form, (lam, steps, weighing) in chosen.items():
        if steps:
            train = _training(rows, vectors, form, elsewhere)
            deltas[form] = QueryAdapter.encode(fit(queries, train, vectors, (lam,), (steps,), (weighing,))[0])
    adapter = QueryAdapter(
        version="minilm-query-v1",
        # the int8-activation vectors are cosine 0.995 to the fp32-activation ones, so one map serves both
        embedders=sorted({embedder, embedder.removesuffix("-dynq")}),
        dim=queries.shape[1],
        deltas=deltas,
        fitted_on=f"calibration splits of {', '.join(sorted(vectors))} less {len(elsewhere)} questions answered "
        f"elsewhere; per form (lam, steps, weighing): {chosen}",
    )
    (out / ADAPTER_FILE).write_text(adapter.model_dump_json(indent=1) + "\n")
    maps = adapter.matrices()
    mapped_queries = np.stack(
        [adapted(queries[i : i + 1], maps[f])[0] if (f := question_form(r["question"])) in maps else queries[i]
         for i, r in enumerate(rows)]
    )  # fmt: skip
    mapped = dense_swapped(rows, vectors, mapped_queries)
    plain = dense_swapped(rows, vectors, queries)
    held = {
        "hybrid, adapter": ndcgs(rows, mapped),
        "hybrid, no adapter (exact search)": ndcgs(rows, plain),
        "hybrid, no adapter (Chroma)": ndcgs(rows, [r["items"] for r in rows]),
        "dense, adapter": ndcgs(rows, mapped, "dense"),
        "dense, no adapter (exact search)": ndcgs(rows, plain, "dense"),
    }
    return {
        "configs": [{"lam": lam, "steps": s, "weighing": wt} for lam, s, wt in configs],
        "left_out_of_the_fit": sorted(elsewhere),
        "cv_estimate_of_selection": round(cv["estimate"], 4),
        "identity_calib_macro": round(calib[identity], 4),
        "best_calib_macro": round(calib[best], 4),
        "chosen": chosen,
        "chosen_per_fold": [
            dict(zip(FORMS, (configs[pairs[c][1]], configs[pairs[c][0]]), strict=True)) for c in cv["chosen_per_fold"]
        ],
        "fusion_under_the_adapter": fusion_check(rows, vectors, queries, chosen, folds, elsewhere),
        "calibration_out_of_fold": {
            "hybrid, adapter (chosen)": per_protocol(rows, combined[best], "calib"),
            "hybrid, no adapter": per_protocol(rows, combined[identity], "calib"),
        },
        "held_out": {name: per_protocol(rows, v, "held") for name, v in held.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("eval-out/retrieval-cv"))
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    report = run(args.out, args.folds)
    (args.out / "fit_adapter.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
