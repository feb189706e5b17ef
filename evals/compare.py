"""What changed between two eval runs: every numeric figure in both reports, old → new
(per-question figures and timings left out).

A change in a figure that has a bootstrap interval is marked when the new value falls outside
the old run's 95% interval (a rough guide to "more than resampling noise").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

_SKIP = ("seconds", "seed", "limit", "n_questions_loaded", "papers_ingested_now", "ingest_seconds")


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(data, list) and len(data) == 2 and all(isinstance(x, int | float) for x in data):
        out[prefix] = tuple(data)  # a confidence interval
    elif isinstance(data, int | float) and not isinstance(data, bool):
        out[prefix] = data
    return out


def _ci_for(key: str, flat: dict[str, Any]) -> tuple[float, float] | None:
    for candidate in (key.rsplit(".", 1)[0] + ".ci95", key + "_ci95"):
        if isinstance(flat.get(candidate), tuple):
            return flat[candidate]
    return None


def compare(old_dir: Path, new_dir: Path) -> list[dict[str, Any]]:
    """Rows ``{metric, old, new, delta, outside_old_ci}`` for figures present in both runs."""
    try:
        old = json.loads((old_dir / "report.json").read_text())
        new = json.loads((new_dir / "report.json").read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"No eval report at {exc.filename}: run `rag eval --out DIR` first.") from None
    fo, fn = flatten(old), flatten(new)
    rows = []
    for key in sorted(fo.keys() & fn.keys()):
        a, b = fo[key], fn[key]
        per_question = any(part.startswith("per_question") for part in key.split("."))
        if (
            isinstance(a, tuple)
            or per_question
            or any(part in key.split(".")[-1] for part in _SKIP)
            or key.startswith("meta.")
        ):
            continue
        ci = _ci_for(key, fo)
        rows.append(
            {
                "metric": key,
                "old": a,
                "new": b,
                "delta": round(b - a, 4),
                "outside_old_ci": bool(ci and not ci[0] <= b <= ci[1]),
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]], old_dir: Path, new_dir: Path) -> str:
    changed = [r for r in rows if r["delta"]]
    lines = [
        f"## Compared with {old_dir}",
        "",
        f"{len(changed)} of {len(rows)} shared figures changed ({new_dir} vs {old_dir}).",
        "",
    ]
    if changed:
        lines += ["| metric | old | new | delta | |", "| --- | --- | --- | --- | --- |"]
        for r in changed:
            mark = "outside old 95% CI" if r["outside_old_ci"] else ""
            lines.append(f"| {r['metric']} | {r['old']} | {r['new']} | {r['delta']:+} | {mark} |")
    return "\n".join(lines) + "\n"
