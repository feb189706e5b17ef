"""PNG plots of an eval run: retrieval bars per system, grounding scores, latency, decision confusion,
reliability of the judge and the meter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals.common import read_jsonl


def write_plots(out: Path, report: dict[str, Any]) -> list[Path]:
    """Write the plots that the report's parts allow; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    if "retrieval" in report:
        systems = report["retrieval"]["systems"]
        names = list(systems)
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        values = [systems[n]["ndcg@10"] for n in names]
        errors = [
            [v - systems[n]["ndcg@10_ci95"][0] for n, v in zip(names, values, strict=True)],
            [systems[n]["ndcg@10_ci95"][1] - v for n, v in zip(names, values, strict=True)],
        ]
        ax.bar(names, values, yerr=errors, capsize=4, color=["#3056d3" if n == "hybrid" else "#98a2b3" for n in names])
        for i, v in enumerate(values):
            ax.text(i, v + 0.01, f"{v:.3f}", ha="center", fontsize=9)
        ax.set_ylabel("nDCG@10 (95% CI)")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"Retrieval, {report['retrieval']['n_questions']} questions")
        save(fig, "retrieval.png")

    rows = read_jsonl(out / "results.jsonl") if (out / "results.jsonl").exists() else []
    if rows and "answer" in report:
        scores = [s for r in rows for s in r.get("scores", [])]
        if scores:
            fig, ax = plt.subplots(figsize=(6.4, 3.6))
            ax.hist(scores, bins=20, range=(0, 1), color="#12805c")
            ax.set_xlabel("support score of cited sentences (judge)")
            ax.set_ylabel("sentences")
            ax.set_title("Grounding scores")
            save(fig, "grounding.png")
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        latency = [r["seconds"] for r in rows]
        ax.hist(latency, bins=20, color="#b54708")
        a = report["answer"]
        ax.axvline(a["latency_s_p50"], color="k", linestyle="--", label=f"p50 {a['latency_s_p50']} s")
        ax.axvline(a["latency_s_p95"], color="k", linestyle=":", label=f"p95 {a['latency_s_p95']} s")
        ax.set_xlabel("seconds per answer")
        ax.set_ylabel("questions")
        ax.legend()
        ax.set_title("Answer latency")
        save(fig, "latency.png")

    if "decision" in report:
        d = report["decision"]
        labels = d["labels"]
        grid = [[d["confusion"][g][p] for p in labels] for g in labels]
        fig, ax = plt.subplots(figsize=(4.8, 4.0))
        ax.imshow(grid, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=20)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted (consensus meter)")
        ax.set_ylabel("gold label")
        top = max(max(r) for r in grid) or 1
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", color="white" if v > top / 2 else "black")
        ax.set_title(f"Decision: accuracy {d['accuracy']['mean']:.3f}")
        save(fig, "decision.png")

    curves = {
        name: report[part]["reliability"]
        for part, name in (("checker", "judge: support score"), ("decision", "meter: verdict's stance mass"))
        if part in report and (report[part].get("reliability") or {}).get("n")
    }
    if curves:
        fig, ax = plt.subplots(figsize=(4.8, 4.4))
        ax.plot([0, 1], [0, 1], color="#98a2b3", linestyle="--", label="perfectly calibrated")
        for (name, r), color in zip(curves.items(), ("#3056d3", "#b54708"), strict=False):
            xs = [b["predicted"] for b in r["bins"]]
            ys = [b["observed"] for b in r["bins"]]
            ax.plot(xs, ys, marker="o", color=color, label=f"{name} (ECE {r['ece']:.3f})")
        ax.set_xlabel("predicted probability (bin mean)")
        ax.set_ylabel("observed rate")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        ax.set_title("Reliability")
        save(fig, "reliability.png")
    return written
