"""The NLI judge: any NLI or cross-encoder model exported to ONNX, loaded from a local folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.check.base import Support, sentence_units
from rag.errors import ConfigError, ModelError


class NLIJudge:
    """An NLI / cross-encoder model in ONNX, loaded from a local folder (nothing is downloaded).

    The folder holds ``model.onnx``, its ``tokenizer.json`` and a ``config.json`` whose ``id2label``
    names an entailment class (a single-logit model is read as a support probability). Each
    sentence of the cited passages is a premise for the claim; the best entailment wins.
    """

    def __init__(self, folder: Path, threshold: float = 0.5, max_length: int = 512) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        files = {name: folder / name for name in ("model.onnx", "tokenizer.json", "config.json")}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise ConfigError(f"NLI judge folder {folder} lacks {', '.join(missing)}.")
        self.name = f"nli:{folder.name}"
        self.threshold = threshold
        self.tokenizer = Tokenizer.from_file(str(files["tokenizer.json"]))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        try:
            self.session = ort.InferenceSession(str(files["model.onnx"]), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"Cannot load {files['model.onnx']}: {exc}") from exc
        labels = json.loads(files["config.json"].read_text()).get("id2label", {})
        entail = [int(i) for i, name in labels.items() if "entail" in str(name).lower()]
        self.entail_index = entail[0] if entail else None
        self.inputs = {i.name for i in self.session.get_inputs()}

    def _probabilities(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(pairs)
        width = max(len(e.ids) for e in encodings)
        feeds: dict[str, np.ndarray] = {}
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
            types[row, : len(e.type_ids)] = e.type_ids
        for name, value in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types)):
            if name in self.inputs:
                feeds[name] = value
        logits = np.asarray(self.session.run(None, feeds)[0], dtype=np.float64)
        if logits.ndim == 1 or logits.shape[1] == 1 or self.entail_index is None:
            return 1 / (1 + np.exp(-logits.reshape(len(pairs), -1)[:, -1]))
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True))[:, self.entail_index]

    def support(self, claim: str, passages: Sequence[str]) -> Support:
        units = sentence_units(passages)
        if not units:
            return Support(0.0, 0, (0, 0))
        probs = self._probabilities([(passages[p][a:b], claim) for p, a, b in units])
        best = int(np.argmax(probs))
        p, a, b = units[best]
        return Support(float(probs[best]), p, (a, b))
