"""`make llm-check`'s own parts that run without a model: joining a model's parts, and the figures."""

import hashlib
import zipfile

import pytest

from evals.llm_check import Model, Unavailable, figures, join_parts


def _wheels(folder, parts):
    for i, data in enumerate(parts, start=1):
        with zipfile.ZipFile(folder / f"model_part{i}-0.1.0-py3-none-any.whl", "w") as z:
            z.writestr(f"model_part{i}/__init__.py", "")
            z.writestr(f"model_part{i}/data/part{i:02d}.bin", data)


def test_parts_join_in_part_order_and_are_checked(tmp_path):
    parts = [bytes([i]) * (1000 + i) for i in range(1, 12)]  # part10 and part11 sort after part1, not before part2
    _wheels(tmp_path, parts)
    whole = b"".join(parts)
    model = Model("m", tuple(f"p{i}" for i in range(11)), len(whole), hashlib.sha256(whole).hexdigest())
    join_parts(model, tmp_path, tmp_path / "m.gguf")
    assert (tmp_path / "m.gguf").read_bytes() == whole and not list(tmp_path.glob("*.whl"))

    _wheels(tmp_path, parts[:2])
    wrong = Model("w", ("p1", "p2"), model.size, model.sha256)
    with pytest.raises(Unavailable, match=r"w: 2,003 bytes, .*expected 11,066 bytes"):
        join_parts(wrong, tmp_path, tmp_path / "w.gguf")
    assert not (tmp_path / "w.gguf").exists() and not (tmp_path / "w.part").exists()


def test_figures_count_shape_citations_fallbacks_calls_and_failures():
    rows = [
        {"sections": 3, "distinct_citations": 4, "citation_recall": 1.0, "uncited_rate": 0.0, "llm_calls": 2,
         "seconds": 60.0, "drafter": "llm:m", "fallback": ""},
        {"sections": 2, "distinct_citations": 1, "citation_recall": 0.5, "uncited_rate": 0.2, "llm_calls": 2,
         "seconds": 80.0, "drafter": "extractive", "fallback": "mostly unsupported"},
        {"error": "LLMUnavailableError: down", "sections": 0, "llm_calls": 0, "seconds": 1.0},
    ]  # fmt: skip
    f = figures(rows)
    assert f["questions"] == 3 and f["failed"] == 1 and f["errors"] == ["LLMUnavailableError"]
    assert f["sectioned_and_cited"] == 0.333 and f["citation_recall"] == 0.75 and f["uncited_rate"] == 0.1
    assert f["fallbacks"] == 1 and f["llm_drafted"] == 1 and f["calls_per_answer"] == 2 and f["most_calls"] == 2
    assert f["seconds_p50"] == 70.0
