"""`rag eval --what retrieval` end to end on a small slice (the full runs are benchmarks)."""

import json

from typer.testing import CliRunner

from evals.common import bootstrap_ci, load_questions
from rag.cli import app


def test_rag_eval_retrieval_writes_the_report(scifact_slice, tmp_path):
    recs = [json.loads(line) for line in scifact_slice.read_text().splitlines()]
    questions = tmp_path / "questions.jsonl"
    rows = [{"qid": f"t{i}", "question": r["title"], "gold_doc_ids": [r["doc_id"]]} for i, r in enumerate(recs[:12])]
    rows.append({"qid": "nogold", "question": "anything", "gold_doc_ids": []})
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"

    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--corpus",
            str(scifact_slice),
            "--questions",
            str(questions),
            "--out",
            str(out),
            "--what",
            "retrieval",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())["retrieval"]
    assert report["n_questions"] == 12 and report["default"] == "hybrid"
    for name in ("hybrid", "bm25", "dense"):
        m = report["systems"][name]
        assert set(m) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10", "latency_ms_p50"}
        assert 0.8 <= m["ndcg@10"] <= 1.0 and m["recall@100"] == 1.0
        lo, hi = m["ndcg@10_ci95"]
        assert lo <= m["ndcg@10"] <= hi
    assert "| hybrid |" in (out / "report.md").read_text()

    # the second run reuses the stored collection
    CliRunner().invoke(app, ["eval", "--corpus", str(scifact_slice), "--questions", str(questions), "--out", str(out)])
    assert json.loads((out / "report.json").read_text())["meta"]["papers_ingested_now"] == 0


def test_question_sampling_is_seeded(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"qid": str(i), "question": f"q{i}"}) + "\n" for i in range(50)))
    a = [q["qid"] for q in load_questions(path, limit=10, seed=1)]
    assert a == [q["qid"] for q in load_questions(path, limit=10, seed=1)]
    assert a != [q["qid"] for q in load_questions(path, limit=10, seed=2)]
    assert len(a) == 10


def test_bootstrap_interval_brackets_the_mean():
    lo, hi = bootstrap_ci([0.0, 1.0] * 50, seed=0)
    assert lo < 0.5 < hi and hi - lo < 0.3


def test_rag_eval_checker_on_a_slice(tmp_path):
    from tests.conftest import shared

    corpus_lines = shared("scifact").read_text().split("\n")
    questions = [
        json.loads(line) for line in shared("scifact", "questions.jsonl").read_text().split("\n") if line.strip()
    ]
    docs = {json.loads(line)["doc_id"]: line for line in corpus_lines if line.strip()}
    wanted = [q for q in questions if q["gold_doc_ids"] and q["label"] in ("SUPPORT", "CONTRADICT")][:60]
    keep = {d for q in wanted for d in q["gold_doc_ids"]} | set(list(docs)[:100])
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(docs[d] for d in keep) + "\n")
    qpath = tmp_path / "questions.jsonl"
    qpath.write_text("".join(json.dumps(q) + "\n" for q in wanted))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["eval", "--corpus", str(corpus), "--questions", str(qpath), "--out", str(out), "--what", "checker"]
    )
    assert result.exit_code == 0, result.output
    section = json.loads((out / "report.json").read_text())["checker"]
    assert set(section["balanced_accuracy"]) == {"random", "topical", "contradicted"}
    assert section["balanced_accuracy"]["random"] > 0.8
    assert 0 < section["threshold"] < 1 and section["n_pairs"]["positive"] > 0
    assert "## Checker" in (out / "report.md").read_text()


def test_rag_eval_answer_part_writes_results(scifact_slice, tmp_path):
    recs = [json.loads(line) for line in scifact_slice.read_text().splitlines()]
    questions = tmp_path / "q.jsonl"
    rows = [
        {"qid": f"a{i}", "question": r["title"], "gold_doc_ids": [r["doc_id"]], "long_answer": r["abstract"][:300]}
        for i, r in enumerate(recs[:4])
    ]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["eval", "--corpus", str(scifact_slice), "--questions", str(questions), "--out", str(out), "--what", "answer"],
    )
    assert result.exit_code == 0, result.output
    section = json.loads((out / "report.json").read_text())["answer"]
    assert section["n_questions"] == 4 and section["drafters"] == ["extractive"]
    metrics = section["metrics"]
    assert metrics["gold_paper_recall"]["mean"] >= 0.75 and metrics["citation_recall"]["mean"] == 1.0
    assert 0 < metrics["rougeL_f1"]["mean"] < 1
    lines = (out / "results.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 4 and first["markdown"].startswith("# ") and first["verdicts"]
    assert "## Answers" in (out / "report.md").read_text()
