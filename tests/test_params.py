"""Fitted parameters are read strictly: keys, shapes and feature names are checked, the version comes from the file."""

from __future__ import annotations

import base64
import json
from importlib import resources

import numpy as np
import pytest

from rag.check import FEATURES, POLARITY_FEATURES, OfflineJudge
from rag.consensus import METER_FEATURES, STANCES, OfflineStance
from rag.errors import ModelError
from rag.lang.asks import PAIR_FEATURES
from rag.params import (
    ADAPTER_FILE,
    JUDGE_FILE,
    STANCE_FILE,
    JudgeParams,
    QueryAdapter,
    StanceParams,
    bundled,
    parse,
)


def _raw(filename: str) -> dict:
    return json.loads((resources.files("rag") / filename).read_text())


def test_shipped_params_fit_the_code_and_name_the_models():
    judge, stance = bundled(JudgeParams, JUDGE_FILE), bundled(StanceParams, STANCE_FILE)
    assert judge.relevance.features == FEATURES and judge.polarity and judge.polarity.features == POLARITY_FEATURES
    assert stance.features == METER_FEATURES and stance.stances == list(STANCES)
    assert stance.tests is not None and stance.tests.features == PAIR_FEATURES  # the gate: who votes
    # the judge's and meter's names in receipts are the files' versions, not constants kept in step by hand
    assert OfflineJudge(embedder=None, params=judge).name == judge.version == "offline-v3"  # type: ignore[arg-type]
    assert OfflineStance(embedder=None, params=stance).name == stance.version == "offline-v2"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(surprise=1), "Extra inputs are not permitted"),
        (lambda d: d.pop("threshold"), "threshold"),
        (lambda d: d["relevance"]["weights"].pop(), "12 weights for 13 features"),
        (lambda d: d.update(threshold=1.5), "less than or equal to 1"),
    ],
)
def test_judge_file_rejects_unknown_missing_and_misshapen(edit, message):
    data = _raw(JUDGE_FILE)
    edit(data)
    with pytest.raises(ModelError, match=message):
        parse(JudgeParams, json.dumps(data), "judge.json")


def test_feature_names_are_checked_against_the_code():
    data = _raw(JUDGE_FILE)
    data["relevance"]["features"][0] = "max_cosine"  # a renamed feature: weights would land on the wrong inputs
    params = parse(JudgeParams, json.dumps(data), "judge.json")
    with pytest.raises(ModelError, match=r"missing features \['max_cos'\], unknown features \['max_cosine'\]"):
        OfflineJudge(embedder=None, params=params)  # type: ignore[arg-type]
    swapped = _raw(JUDGE_FILE)
    feats = swapped["relevance"]["features"]
    feats[0], feats[1] = feats[1], feats[0]
    with pytest.raises(ModelError, match="another order"):
        OfflineJudge(embedder=None, params=parse(JudgeParams, json.dumps(swapped), "j"))  # type: ignore[arg-type]


def test_stance_file_shapes_and_forms():
    data = _raw(STANCE_FILE)
    data["weights"]["claim"] = data["weights"]["claim"][:2]
    with pytest.raises(ModelError, match=r"claim weights 2x.* do not fit 3 stances x 17 features"):
        parse(StanceParams, json.dumps(data), "stance.json")
    data = _raw(STANCE_FILE)
    del data["aggregation"]["claim"]
    with pytest.raises(ModelError, match="aggregation needs both forms"):
        parse(StanceParams, json.dumps(data), "stance.json")
    data = _raw(STANCE_FILE)
    data["tests"]["features"][0] = "pair_anywhere"
    with pytest.raises(ModelError, match=r"Tests-the-question parameters do not fit the code"):
        OfflineStance(embedder=None, params=parse(StanceParams, json.dumps(data), "s"))  # type: ignore[arg-type]
    data = _raw(STANCE_FILE)
    data["features"] = list(reversed(data["features"]))
    with pytest.raises(ModelError, match="another order"):
        OfflineStance(embedder=None, params=parse(StanceParams, json.dumps(data), "s"))  # type: ignore[arg-type]


def test_query_adapter_file_round_trips_and_rejects_misshapen():
    adapter = bundled(QueryAdapter, ADAPTER_FILE)
    assert "local:minilm-l6-int8-dynq" in adapter.embedders  # the default embedder's vectors
    assert adapter.deltas, "no form has a fitted map"
    for form, matrix in adapter.matrices().items():
        assert matrix.shape == (adapter.dim, adapter.dim) == (384, 384)  # MiniLM's vectors
        stored = np.frombuffer(base64.b64decode(adapter.deltas[form]), "<f2").reshape(matrix.shape)
        assert np.allclose(matrix - np.eye(adapter.dim), stored, atol=1e-6)  # what is stored is what is applied
        assert 0 < float(np.abs(matrix - np.eye(adapter.dim)).max()) < 1  # fitted, and still near the identity
    form = next(iter(adapter.deltas))
    data = _raw(ADAPTER_FILE)
    data["dim"] = 383
    with pytest.raises(ModelError, match=rf"{form}: 147456 values .* not 383"):
        parse(QueryAdapter, json.dumps(data), "adapter.json")
    data = _raw(ADAPTER_FILE)
    data["deltas"][form] = QueryAdapter.encode(np.full((384, 384), np.inf, dtype=np.float32))
    with pytest.raises(ModelError, match="finite: False"):
        parse(QueryAdapter, json.dumps(data), "adapter.json")
    data = _raw(ADAPTER_FILE)
    data["deltas"] = {"keywords": data["deltas"][form]}
    with pytest.raises(ModelError, match="question"):
        parse(QueryAdapter, json.dumps(data), "adapter.json")
