"""Fitted parameters that ship with the package, one pydantic model per kind.

A file is read strictly: unknown or missing keys are rejected, shapes are checked, and the code
that uses the parameters checks the feature names against its own lists (:meth:`Logistic.check`,
:meth:`StanceParams.check`) — a file fitted for other features fails loudly instead of silently
scoring with zeros. The judge's or meter's version is the file's ``version``. The fitting code
lives in ``evals/`` (``python -m evals.checker fit``, ``python -m evals.decision fit``).
"""

from __future__ import annotations

import base64
from functools import lru_cache
from importlib import resources
from typing import Annotated, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rag.errors import ModelError
from rag.lang.asks import Form

JUDGE_FILE = "judge_offline_v3.json"
STANCE_FILE = "stance_offline_v2.json"
ADAPTER_FILE = "query_adapter_v1.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_names(kind: str, found: list[str], expected: list[str]) -> None:
    if found != expected:
        missing = [f for f in expected if f not in found]
        unknown = [f for f in found if f not in expected]
        raise ModelError(
            f"{kind} parameters do not fit the code: missing features {missing}, unknown features {unknown}"
            + ("" if missing or unknown else " (same names, another order)")
            + "; refit them (see rag/params.py)."
        )


class Logistic(_Strict):
    """A logistic model: ``sigmoid(bias + weights · features)``."""

    features: list[str] = Field(description="Feature names, in the order of `weights`.")
    weights: list[float]
    bias: float

    @model_validator(mode="after")
    def _shape(self) -> Logistic:
        if len(self.weights) != len(self.features):
            raise ValueError(f"{len(self.weights)} weights for {len(self.features)} features")
        return self

    def check(self, kind: str, expected: list[str]) -> Logistic:
        _check_names(kind, self.features, expected)
        return self

    def probability(self, x: np.ndarray) -> float:
        return 1.0 / (1.0 + float(np.exp(-(self.bias + float(np.asarray(self.weights) @ x)))))


class JudgeParams(_Strict):
    """The offline citation judge: relevance × polarity, and the support threshold."""

    version: str = Field(description="The judge's name in receipts, e.g. `offline-v3`.")
    relevance: Logistic
    polarity: Logistic | None = None
    threshold: float = Field(ge=0.0, le=1.0)
    fitted_on: str = ""


class Aggregation(_Strict):
    """How the per-paper stances are weighed into a verdict (see ``rag.consensus.verdict_of``)."""

    tau: float = Field(gt=0.0, description="Temperature of the retrieval-score softmax that weights papers.")
    decided_at: float
    possibly_at: float
    yes_at: float
    no_at: float


class StanceParams(_Strict):
    """The offline consensus meter: per question form a softmax over stance features and verdict
    thresholds, and the gate that says which papers test the question."""

    version: str = Field(description="The meter's name, e.g. `offline-v2`.")
    features: list[str]
    stances: list[str]
    weights: dict[Form, list[list[float]]] = Field(description="Per form, one row per stance, one column per feature.")
    bias: dict[Form, list[float]]
    aggregation: dict[Form, Aggregation]
    tests: Logistic | None = Field(
        None, description="Whether a paper tests what the question asks (`rag.lang.asks`); only those vote."
    )
    tests_at: dict[Form, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict,
        description="Per form, the `tests` probability from which a paper votes (0 or absent: every paper votes).",
    )
    fitted_on: str = ""

    @model_validator(mode="after")
    def _shape(self) -> StanceParams:
        for name, part in (("weights", self.weights), ("bias", self.bias), ("aggregation", self.aggregation)):
            if set(part) != {"question", "claim"}:
                raise ValueError(f"{name} needs both forms, `question` and `claim`")
        for form, rows_ in self.weights.items():
            rows, cols = len(rows_), {len(r) for r in rows_}
            if rows != len(self.stances) or cols != {len(self.features)} or len(self.bias[form]) != len(self.stances):
                raise ValueError(
                    f"{form} weights {rows}x{sorted(cols)} and bias {len(self.bias[form])} do not fit "
                    f"{len(self.stances)} stances x {len(self.features)} features"
                )
        return self

    def check(self, features: list[str], stances: list[str], tests: list[str]) -> StanceParams:
        _check_names("Stance", self.features, features)
        _check_names("Stance classes of the", self.stances, stances)
        if self.tests:
            self.tests.check("Tests-the-question", tests)
        return self


class QueryAdapter(_Strict):
    """Linear maps of a query's vector before the dense search, ``normalise(q @ matrix)``, one per query form
    (a form without one keeps its vector), fitted for the embedders it names (``python -m evals.fit_adapter``);
    the stored chunk vectors are untouched."""

    version: str = Field(description="The adapter's name, e.g. `minilm-query-v1`.")
    embedders: list[str] = Field(description="Embedder names (`Embedder.name`) whose vectors it was fitted on.")
    dim: int = Field(gt=0)
    deltas: dict[Form, str] = Field(
        description="Per query form, base64 of `matrix - identity` as little-endian float16, row-major."
    )
    fitted_on: str = ""

    @model_validator(mode="after")
    def _shape(self) -> QueryAdapter:
        for form in self.deltas:
            delta = self._delta(form)
            if delta.size != self.dim * self.dim or not np.isfinite(delta).all():
                raise ValueError(f"{form}: {delta.size} values (finite: {np.isfinite(delta).all()}), not {self.dim}^2")
        return self

    def _delta(self, form: Form) -> np.ndarray:
        return np.frombuffer(base64.b64decode(self.deltas[form]), dtype="<f2")

    def matrices(self) -> dict[Form, np.ndarray]:
        """Per form that has one, the ``dim`` x ``dim`` float32 map."""
        eye = np.eye(self.dim, dtype=np.float32)
        return {f: eye + self._delta(f).astype(np.float32).reshape(self.dim, self.dim) for f in self.deltas}

    @staticmethod
    def encode(matrix: np.ndarray) -> str:
        """A ``deltas`` value for a fitted ``matrix``."""
        delta = np.asarray(matrix, dtype=np.float32) - np.eye(len(matrix), dtype=np.float32)
        return base64.b64encode(delta.astype("<f2").tobytes()).decode()


P = TypeVar("P", JudgeParams, StanceParams, QueryAdapter)


def parse(kind: type[P], text: str, where: str) -> P:
    """Parameters of ``kind`` from JSON text; :class:`ModelError` naming ``where`` when they do not fit."""
    try:
        return kind.model_validate_json(text)
    except ValidationError as exc:
        raise ModelError(f"{where}: not valid {kind.__name__}: {exc}") from None


@lru_cache(maxsize=4)
def bundled(kind: type[P], filename: str) -> P:
    """The parameters shipped in the package as ``rag/<filename>``."""
    return parse(kind, (resources.files("rag") / filename).read_text(), f"rag/{filename}")
