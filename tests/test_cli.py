import json

from typer.testing import CliRunner

from rag.cli import app

runner = CliRunner()


def test_ingest_stats_delete_round_trip(settings, scifact_slice, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(settings.home))
    result = runner.invoke(app, ["ingest", str(scifact_slice), "-c", "cli-test", "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["papers_added"] == 30 and report["failed"] == []

    result = runner.invoke(app, ["stats", "--json"])
    assert result.exit_code == 0
    (col,) = json.loads(result.stdout)["collections"]
    assert col["name"] == "cli-test" and col["papers"] == 30

    doc_id = json.loads(scifact_slice.read_text().splitlines()[0])["doc_id"]
    result = runner.invoke(app, ["delete", doc_id, "-c", "cli-test"])
    assert result.exit_code == 0 and "Removed" in result.stderr
    assert json.loads(runner.invoke(app, ["stats", "--json"]).stdout)["collections"][0]["papers"] == 29


def test_partial_failure_exits_1_with_reasons(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(settings.home))
    good = tmp_path / "good.txt"
    good.write_text("Bone study\n\nVitamin D and bones.", encoding="utf-8")
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"not a pdf")
    result = runner.invoke(app, ["ingest", str(good), str(bad), "-c", "cli-test", "--no-progress"])
    assert result.exit_code == 1
    assert "CorruptFileError" in result.stderr and "bad.pdf" in result.stderr
    assert "papers added" in result.stderr


def test_unknown_collection_exits_2_with_hint(settings, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(settings.home))
    result = runner.invoke(app, ["stats", "-c", "missing"])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr and "rag ingest" in result.stderr


def test_search_json_lists_ranked_hits(settings, scifact_slice, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(settings.home))
    assert runner.invoke(app, ["ingest", str(scifact_slice), "-c", "cli-test", "--no-progress"]).exit_code == 0
    title = json.loads(scifact_slice.read_text().splitlines()[0])["title"]
    result = runner.invoke(app, ["search", title, "-c", "cli-test", "--k", "3", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert len(hits) == 3 and [h["rank"] for h in hits] == [1, 2, 3]
    assert set(hits[0]) >= {"doc_id", "chunk_id", "score", "text"}
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


def test_ask_json_offline(settings, scifact_slice, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(settings.home))
    assert runner.invoke(app, ["ingest", str(scifact_slice), "-c", "cli-test", "--no-progress"]).exit_code == 0
    title = json.loads(scifact_slice.read_text().splitlines()[0])["title"]
    result = runner.invoke(app, ["ask", title, "-c", "cli-test", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["drafter"] == "extractive" and data["sources"] and data["markdown"].startswith("# ")


def test_ask_one_paper_and_an_unknown_paper_is_an_error(settings, scifact_slice, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(settings.home))
    assert runner.invoke(app, ["ingest", str(scifact_slice), "-c", "cli-test", "--no-progress"]).exit_code == 0
    first, second = (json.loads(line) for line in scifact_slice.read_text().splitlines()[:2])
    for question in (first["title"], second["title"]):  # the first paper's own title finds it only unfiltered
        result = runner.invoke(app, ["ask", question, "-c", "cli-test", "--doc-id", second["doc_id"], "--json"])
        assert result.exit_code == 0, result.output
        assert {s["doc_id"] for s in json.loads(result.stdout)["sources"]} <= {second["doc_id"]}
    assert json.loads(result.stdout)["sources"]
    for command in ("ask", "search"):
        result = runner.invoke(
            app, [command, "cells", "-c", "cli-test", "--doc-id", second["doc_id"], "--doc-id", "pubmed:0"]
        )
        assert result.exit_code == 2
        assert "doc_ids: no paper pubmed:0 in collection 'cli-test'" in result.stderr


def test_eval_without_the_eval_extra_says_what_to_install(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "evals.run", None)  # what a missing optional library looks like
    result = runner.invoke(app, ["eval", "--corpus", "c.jsonl", "--questions", "q.jsonl", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "pip install -e '.[eval]'" in result.stderr


def test_preset_help_names_the_real_presets():
    from rag.settings import PRESETS

    result = runner.invoke(app, ["ingest", "--help"])
    assert all(name in result.stdout for name in PRESETS) and "quality" not in result.stdout


def test_ask_shows_the_step_and_its_seconds_on_a_terminal(settings, scifact_slice, monkeypatch):
    import io

    from rich.console import Console

    import rag.cli

    monkeypatch.setenv("RAG_HOME", str(settings.home))
    assert runner.invoke(app, ["ingest", str(scifact_slice), "-c", "cli-test", "--no-progress"]).exit_code == 0
    screen = io.StringIO()
    monkeypatch.setattr(rag.cli, "err", Console(file=screen, force_terminal=True, width=100))
    title = json.loads(scifact_slice.read_text().splitlines()[0])["title"]
    result = runner.invoke(app, ["ask", title, "-c", "cli-test", "--plain"])
    assert result.exit_code == 0, result.output
    shown = screen.getvalue()
    # the step the first frame caught (a fast machine may be past retrieval already), then its seconds
    assert any(f"{step} … " in shown for step in ("Retrieving evidence", "Drafting", "Checking citations"))
    assert " s" in shown
    assert "Retrieving" not in result.stdout  # the answer's stream stays clean
    quiet = io.StringIO()
    monkeypatch.setattr(rag.cli, "err", Console(file=quiet, force_terminal=False))
    assert runner.invoke(app, ["ask", title, "-c", "cli-test", "--plain"]).exit_code == 0
    assert quiet.getvalue() == ""  # not a terminal: no spinner
