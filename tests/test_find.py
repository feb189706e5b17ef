"""`rag find` end to end: the connectors, the Finder and the store, against a real HTTP server on
127.0.0.1 replaying the services' real recorded responses (tests/fake_services.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.errors import InputError
from rag.find.base import Record
from rag.find.europepmc import EuropePMC
from rag.find.finder import Finder
from rag.find.http import Fetcher
from rag.settings import FindSettings, Settings
from rag.store import Store
from rag.types import FindRequest
from tests.conftest import free_port
from tests.fake_services import FakeServices

PMIDS = ["12091962", "9997", "11748933", "11700088", "28775130"]  # every article the efetch recordings hold
PNAS = "10.1073/pnas.1414271111"  # recorded by OpenAlex and by Crossref


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServices]:
    with FakeServices() as services:
        yield services


@pytest.fixture
def home(tmp_path: Path, fake: FakeServices) -> Settings:
    fake.reset()
    return Settings(home=tmp_path / "home", find=FindSettings(**fake.settings()))


def finder(settings: Settings) -> Finder:
    return Finder(Store(settings))


def stored(settings: Settings, collection: str) -> dict[str, Any]:
    """The first chunk of every stored paper, by doc id."""
    return {c.doc_id: c for c in Store(settings).papers(collection)}


def test_europepmc_search_stores_every_record_with_an_abstract_and_its_metadata(home, fake):
    recorded = json.loads(fake.recording("europepmc/search_cancer_core.json"))["resultList"]["result"]
    report = finder(home).find(FindRequest(query="cancer", sources=["europepmc"], max_results=25), "epmc")
    with_text = [r for r in recorded if r.get("abstractText")]
    assert report.records == len(recorded) == 25 and report.new == len(with_text) == 21
    assert sorted(report.no_text) == sorted(f"pubmed:{r['pmid']}" for r in recorded if not r.get("abstractText"))
    papers = stored(home, "epmc")
    for r in with_text:
        chunk = papers[f"pubmed:{r['pmid']}"]
        assert chunk.title == r["title"].strip() and chunk.year == int(r["pubYear"])
        assert chunk.doi == (r.get("doi") or "").lower() or (chunk.doi is None and not r.get("doi"))
        assert chunk.pub_types == r["pubTypeList"]["pubType"] and chunk.cited_by == r["citedByCount"]
        first = r["authorList"]["author"][0]
        assert chunk.authors[0].endswith(first.get("lastName") or first.get("collectiveName") or first["fullName"])
    review = papers["pubmed:39212676"]  # a structured abstract: its labels become sections
    assert review.section == "Context" and review.pub_types[0] == "Systematic Review"


def test_pubmed_records_by_id_keep_structured_abstracts_types_and_mesh(home):
    report = finder(home).find(FindRequest(ids=[f"pmid:{p}" for p in PMIDS], sources=["pubmed"]), "pmed")
    assert report.records == 5 and report.no_text == ["pubmed:12091962"]  # a review recorded without abstract
    chunks = sorted(
        (c for c in Store(home).iter_chunks("pmed") if c.doc_id == "pubmed:28775130"), key=lambda c: c.index
    )
    assert chunks[0].section == "Objectives"
    assert chunks[0].doi == "10.1136/oemed-2017-104431" and chunks[0].year == 2018
    assert chunks[0].authors[0] == "Catherine C Lerro"
    first = stored(home, "pmed")["pubmed:28775130"]
    assert {"Objectives", "Methods", "Results", "Conclusions"} <= {c.section for c in chunks}
    assert first.source == "pubmed:28775130"


def test_a_paper_two_services_return_is_stored_once_with_both_services_metadata(home, fake):
    report = finder(home).find(FindRequest(ids=[f"doi:{PNAS}"], sources=["openalex", "crossref"]), "dup")
    assert report.records == 2 and report.papers == 1 and report.duplicates == 1 and report.new == 1
    (paper,) = stored(home, "dup").values()
    work = json.loads(fake.recording("openalex/work_doi_10.1073_pnas.1414271111.json"))
    assert paper.doc_id == "pubmed:25349395"  # OpenAlex knows its PMID
    assert paper.cited_by == work["cited_by_count"] == 138
    assert paper.notice == "Correction (10.1073/pnas.1507001112, 2015-05-04)"  # Crossref's updated-by
    assert not paper.retracted


def test_a_retracted_record_is_flagged_in_the_store_and_the_report(home, fake):
    # The recordings hold no retraction (shared/data/api/SOURCES.md, "Gaps"): the real OpenAlex record
    # with only `is_retracted` changed is served for this request.
    work = json.loads(fake.recording("openalex/work_doi_10.1073_pnas.1414271111.json"))
    work["is_retracted"] = True
    fake.override("/openalex/works/", json.dumps(work).encode(), content_type="application/json")
    try:
        report = finder(home).find(FindRequest(ids=[f"doi:{PNAS}"], sources=["openalex"]), "ret")
    finally:
        fake.reset()
    assert report.retracted == ["pubmed:25349395"]
    paper = stored(home, "ret")["pubmed:25349395"]
    assert paper.retracted and paper.notice.startswith("Retract")


def test_arxiv_search_and_openalex_search(home, fake):
    feed = finder(home).find(FindRequest(query="testing", sources=["arxiv"], max_results=10), "arx")
    assert feed.records == feed.new == 10
    papers = stored(home, "arx")
    assert "arxiv:2202.12139" in papers and papers["arxiv:2202.12139"].pub_types[:2] == ["Preprint", "cs.SE"]
    # OpenAlex's one recorded search used `filter=title.search:`; it is served here for our `search=` request.
    fake.override("/openalex/works", fake.recording("openalex/works_filter_title_search_chemistry_tools.json"))
    try:
        works = finder(home).find(
            FindRequest(query="Augmenting large language models with chemistry tools", sources=["openalex"]), "oalex"
        )
    finally:
        fake.reset()
    assert works.records == 2 and set(works.doc_ids) == {"pubmed:38799228", "arxiv:2304.05376"}


def test_a_rerun_is_served_from_the_cache_without_a_request(home, fake):
    request = FindRequest(ids=[f"pmid:{p}" for p in PMIDS], sources=["pubmed"])
    first = finder(home).find(request, "cache")
    sent = len(fake.requests)
    again = finder(home).find(request, "cache")
    assert len(fake.requests) == sent, "the second run sent requests"
    assert again.sources[0].requests == 0 and again.sources[0].cached >= 1
    assert again.already_stored == first.new == 4 and again.new == 0


def test_pubmed_search_is_paced_at_its_rate(home, fake):
    settings = home.model_copy(update={"find": FindSettings(**fake.settings(pubmed_rate=4.0, cache=False))})
    started = time.monotonic()
    for _ in range(3):  # esearch + efetch each time: 6 requests at 4/s
        finder(settings).find(FindRequest(query="biopython", sources=["pubmed"]), "rate")
    starts = [r.at for r in fake.served("/pubmed/")]
    assert len(starts) == 6 and time.monotonic() - started >= 1.0
    for i in range(len(starts) - 4):
        assert starts[i + 4] - starts[i] >= 1.0 - 0.05, "more than 4 requests inside one second"


def test_no_network_says_so_in_one_line_and_leaves_the_store_alone(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    urls = {f"{s}_url": dead for s in ("pubmed", "europepmc", "openalex", "arxiv", "crossref")}
    settings = Settings(home=tmp_path / "home", find=FindSettings(**urls))
    started = time.monotonic()
    report = finder(settings).find(FindRequest(query="vitamin D osteoporosis"), "offline")
    assert time.monotonic() - started < 2.0
    assert report.offline and report.new == 0 and report.note.startswith("No network:")
    assert all(t.unavailable for t in report.sources) and len(report.sources) == 4


def test_bad_requests_are_input_errors(home):
    with pytest.raises(InputError, match="unknown service"):
        finder(home).find(FindRequest(query="x", sources=["scholar"]), "bad")
    with pytest.raises(InputError, match="query"):
        finder(home).find(FindRequest(), "bad")
    with pytest.raises(InputError, match="pmid"):
        finder(home).find(FindRequest(ids=["12345"]), "bad")


def test_full_text_from_europepmc_is_read_as_a_paper_with_references_apart(home, fake):
    record = Record(source="europepmc", key="europepmc:PMC3258128", pmcid="PMC3258128", title="x")
    with Fetcher("europepmc", home.find, None) as fetch:
        paper = EuropePMC(fetch, home.find).full_text(record)
    assert paper is not None and paper.references and len(paper.sections) > 3
    refs = {r.raw for r in paper.references}
    assert not any(ref in s.text for ref in refs for s in paper.sections)


def test_rag_find_cli_and_ask_find(home, fake, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(home.home))
    for key, value in fake.settings().items():
        monkeypatch.setenv(f"RAG_FIND__{key.upper()}", str(value))
    runner = CliRunner()
    result = runner.invoke(
        app, ["find", "cancer", "--source", "europepmc", "--max", "25", "-c", "cli", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "21 new" in result.stderr and "europepmc" in result.stderr
    result = runner.invoke(
        app, ["ask", "cancer", "--find", "--source", "europepmc", "--max", "25", "-c", "cli", "--plain"]
    )
    assert result.exit_code == 0, result.output
    assert "0 new, 21 already stored" in result.stderr
    sources = result.stdout.split("## Sources")[1]
    assert "[Review" in sources or "[Systematic review" in sources  # publication types in the source list
    assert "*Literature search:" in result.stdout


def test_rag_find_offline_exits_3_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    dead = f"http://127.0.0.1:{free_port()}"
    for s in ("pubmed", "europepmc", "openalex", "arxiv", "crossref"):
        monkeypatch.setenv(f"RAG_FIND__{s.upper()}_URL", dead)
    result = CliRunner().invoke(app, ["find", "vitamin D", "--no-progress"])
    assert result.exit_code == 3
    assert "No network: pubmed, europepmc, openalex, arxiv could not be reached" in result.stderr


def test_the_server_searches_first_when_asked(home, fake):
    from fastapi.testclient import TestClient

    from rag.server import create_app

    body = {"question": "cancer", "collection": "srv", "find": {"sources": ["europepmc"], "max_results": 25}}
    with TestClient(create_app(home)) as http:
        answered = http.post("/v1/answer", json=body)
        bad = http.post("/v1/answer", json={**body, "find": {"sources": ["scholar"]}})
    assert answered.status_code == 200, answered.text
    found = answered.json()["found"]
    assert found["new"] == 21 and found["sources"][0]["source"] == "europepmc"
    assert bad.status_code == 400 and "unknown service" in bad.json()["error"]["message"]


def test_ask_find_without_network_answers_from_the_local_store(tmp_path, scifact_slice, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    dead = f"http://127.0.0.1:{free_port()}"
    for s in ("pubmed", "europepmc", "openalex", "arxiv", "crossref"):
        monkeypatch.setenv(f"RAG_FIND__{s.upper()}_URL", dead)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(scifact_slice), "-c", "local", "--no-progress"]).exit_code == 0
    question = json.loads(scifact_slice.read_text().splitlines()[0])["title"]
    result = runner.invoke(app, ["ask", question, "--find", "-c", "local", "--plain"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("No network:") == 1
    assert result.stdout.startswith("# ") and "## Sources" in result.stdout
    assert "*Literature search: No network:" in result.stdout
