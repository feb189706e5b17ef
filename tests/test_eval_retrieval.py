"""`rag eval --what retrieval` end to end on a small slice (the full runs are benchmarks)."""

import json

from typer.testing import CliRunner

from evals.common import bootstrap_ci, load_questions
from evals.retrieval import answered_elsewhere, protocols
from rag.cli import app
from tests.conftest import head_lines


def rag_eval(corpus, questions, out, *extra):
    """``rag eval --corpus C --questions Q --out O [extra...]`` through the CLI."""
    return CliRunner().invoke(
        app, ["eval", "--corpus", str(corpus), "--questions", str(questions), "--out", str(out), *extra]
    )


def test_rag_eval_retrieval_writes_the_report(scifact_slice, tmp_path):
    recs = [json.loads(line) for line in scifact_slice.read_text().splitlines()]
    questions = tmp_path / "questions.jsonl"
    rows = [{"qid": f"t{i}", "question": r["title"], "gold_doc_ids": [r["doc_id"]]} for i, r in enumerate(recs[:12])]
    rows.append({"qid": "nogold", "question": "anything", "gold_doc_ids": []})
    # a claim without evidence, which only the BEIR protocol scores (against the paper its source cites)
    cited = {"cited_doc_ids": [recs[0]["doc_id"]]}
    rows.append({"qid": "nei", "question": recs[0]["title"], "gold_doc_ids": [], "meta": cited})
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"

    result = rag_eval(scifact_slice, questions, out, "--what", "retrieval")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())["retrieval"]
    assert report["n_questions"] == 12 and report["default"] == "hybrid"
    for name in ("hybrid", "bm25", "dense"):
        m = report["systems"][name]
        assert set(m) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10", "latency_ms_p50"}
        assert 0.8 <= m["ndcg@10"] <= 1.0 and m["recall@100"] == 1.0
        lo, hi = m["ndcg@10_ci95"]
        assert lo <= m["ndcg@10"] <= hi
    beir = report["protocols"]["beir"]
    assert report["protocols"]["gold"]["n_questions"] == 12 and beir["n_questions"] == 13
    assert beir["systems"]["hybrid"]["ndcg@10"] > 0.8 and set(beir["systems"]) == set(report["systems"])
    assert report["per_question_ndcg@10"]["hybrid"].keys() == {f"t{i}" for i in range(12)}
    markdown = (out / "report.md").read_text()
    assert "| hybrid |" in markdown and "BEIR protocol" in markdown

    # the second run reuses the stored collection
    rag_eval(scifact_slice, questions, out)
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


def checker_eval_on_a_slice(tmp_path, name, pick, n_docs):
    """``rag eval --what checker`` on the questions ``pick`` chooses from a shared data set, over their
    gold papers plus its first ``n_docs`` papers; the report's checker section and the out folder."""
    from tests.conftest import shared

    # split on newlines only: abstracts may hold U+2028, which splitlines() would break records on
    docs = {json.loads(line)["doc_id"]: line for line in shared(name).read_text().split("\n") if line.strip()}
    questions = pick(
        [json.loads(line) for line in shared(name, "questions.jsonl").read_text().split("\n") if line.strip()]
    )
    keep = {d for q in questions for d in q["gold_doc_ids"]} | set(list(docs)[:n_docs])
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(docs[d] for d in keep) + "\n")
    qpath = tmp_path / "questions.jsonl"
    qpath.write_text("".join(json.dumps(q) + "\n" for q in questions))
    out = tmp_path / "out"
    result = rag_eval(corpus, qpath, out, "--what", "checker")
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())["checker"], out


def test_rag_eval_checker_on_a_slice(tmp_path):
    section, out = checker_eval_on_a_slice(
        tmp_path,
        "scifact",
        lambda qs: [q for q in qs if q["gold_doc_ids"] and q["label"] in ("SUPPORT", "CONTRADICT")][:60],
        100,
    )
    assert set(section["balanced_accuracy"]) == {"random", "topical", "contradicted"}
    assert section["balanced_accuracy"]["random"] > 0.8
    assert set(section["calibration_cv"]) == {"random", "topical", "contradicted"}
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
    result = rag_eval(scifact_slice, questions, out, "--what", "answer")
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


def test_rag_eval_decision_plots_and_compare(tmp_path):
    """PubMedQA slice: the decision part scores the consensus meter, plots are written, --compare diffs two runs."""
    from tests.conftest import shared

    questions = head_lines(shared("pubmedqa", "questions.jsonl"), 12)
    wanted = {d for q in questions for d in q["gold_doc_ids"]}
    corpus = [json.loads(line) for line in shared("pubmedqa").read_text().splitlines()]
    corpus_path, questions_path = tmp_path / "c.jsonl", tmp_path / "q.jsonl"
    corpus_path.write_text("".join(json.dumps(r) + "\n" for r in corpus if r["doc_id"] in wanted))
    questions_path.write_text("".join(json.dumps(q) + "\n" for q in questions))
    args = ["eval", "--corpus", str(corpus_path), "--questions", str(questions_path), "--what", "answer,decision"]
    out = tmp_path / "run1"
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    d = report["decision"]
    held = [q for q in questions if q["meta"]["official_split"] == "test"]
    assert d["kind"] == "yesno" and d["split"] == "test" and d["n_questions"] == len(held)
    assert sum(sum(row.values()) for row in d["confusion"].values()) == len(held)
    assert sum(d["verdicts"].values()) == len(held) and 0 <= d["accuracy"]["mean"] <= 1
    correct = sum(d["confusion"][label][label] for label in d["labels"])
    assert d["accuracy"]["mean"] == round(correct / len(held), 4)
    assert len((out / "decisions.jsonl").read_text().splitlines()) == len(held)
    for name in ("latency.png", "grounding.png", "decision.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "## Decision" in (out / "report.md").read_text()
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert all(r["consensus"] in ("yes", "possibly", "no", "unclear") for r in rows if r["answerable"])

    again = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run2"), "--compare", str(out)])
    assert again.exit_code == 0, again.output
    assert f"Compared with {out}" in again.output.replace("\n", "")
    missing = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run3"), "--compare", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "no report.json" in " ".join(missing.output.split())


def test_compare_marks_changes_outside_the_old_interval(tmp_path):
    from evals.compare import compare

    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    (old / "report.json").write_text(
        json.dumps(
            {
                "decision": {"accuracy": {"mean": 0.6, "ci95": [0.55, 0.65]}, "macro_f1": 0.5},
                "retrieval": {"per_question_ndcg@10": {"q1": 0.2}},
            }
        )
    )
    (new / "report.json").write_text(
        json.dumps(
            {
                "decision": {"accuracy": {"mean": 0.7, "ci95": [0.65, 0.75]}, "macro_f1": 0.5},
                "retrieval": {"per_question_ndcg@10": {"q1": 0.9}},
            }
        )
    )
    rows = {r["metric"]: r for r in compare(old, new)}
    assert rows["decision.accuracy.mean"] == {
        "metric": "decision.accuracy.mean",
        "old": 0.6,
        "new": 0.7,
        "delta": 0.1,
        "outside_old_ci": True,
    }
    assert rows["decision.macro_f1"]["delta"] == 0 and "decision.accuracy.ci95" not in rows
    assert not any(k.startswith("retrieval.per_question") for k in rows)


def test_rag_eval_checker_measures_the_shipped_judge_on_pubmedqa_conclusions(tmp_path):
    section, out = checker_eval_on_a_slice(tmp_path, "pubmedqa", lambda qs: qs[:12], 40)
    # nothing to fit on (no SUPPORT/CONTRADICT claims): the judge is measured as it ships
    assert section["mode"] == "shipped" and section["judge"] == "offline-v3"
    assert section["n_pairs"]["positive"] == 12 and set(section["balanced_accuracy"]) == {"random", "topical"}
    assert all(0 <= v <= 1 for v in section["balanced_accuracy"].values())
    assert not (out / "store").exists()  # a checker-only run builds no store
    assert "as shipped" in (out / "report.md").read_text()


def test_rag_eval_checker_without_usable_pairs_says_so(tmp_path, scifact_slice):
    qpath = tmp_path / "questions.jsonl"
    qpath.write_text(json.dumps({"qid": "x", "question": "Is it?", "gold_doc_ids": ["nowhere"]}) + "\n")
    result = rag_eval(scifact_slice, qpath, tmp_path / "o", "--what", "checker")
    assert result.exit_code != 0 and "long_answer" in result.output


def test_an_expert_answer_about_another_question_is_found_and_set_apart():
    """A question paired upstream with another question's answer (and so its citations) is left out of the
    ``answer_on_question`` protocol; the answers on their questions all stay."""
    topics = [
        ("How do statins affect dementia risk?", "Statins lower dementia risk in older adults [0]."),
        ("Does vitamin D prevent fractures?", "Vitamin D with calcium prevents fractures in the elderly [0]."),
        (
            "What drives protein corona formation on nanoparticles?",
            "Protein corona forms on nanoparticles by charge [0].",
        ),
        (
            "How are phage display libraries sequenced?",
            "Phage display libraries are sequenced by next-generation reads [0].",
        ),
        (
            "Which optical microcavities detect single molecules?",
            "Whispering gallery microcavities detect single molecules [0].",
        ),
        (
            "How can user modelling improve recommendation systems?",
            "Plasmonic nanoantennas enhance fluorescence of emitters [0].",
        ),
    ]
    qs = [
        {"qid": f"q{i}", "question": q, "gold_doc_ids": [f"d{i}"], "long_answer": a, "meta": {"citations": [f"d{i}"]}}
        for i, (q, a) in enumerate(topics)
    ]
    assert answered_elsewhere(qs) == {"q5"}
    sets = protocols(qs)
    assert [q["qid"] for q in sets["answer_on_question"]] == ["q0", "q1", "q2", "q3", "q4"]
    # answers that do not cite papers (PubMedQA's conclusions, of the gold abstract itself) are never tested
    plain = [{**q, "meta": {}} for q in qs]
    assert answered_elsewhere(plain) == set() and "answer_on_question" not in protocols(plain)
