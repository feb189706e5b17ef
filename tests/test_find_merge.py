"""Found records become papers: grouping by identifiers and titles, combining, and a retracted
paper in an answer (listed with a warning, supporting nothing, left out of the meter)."""

from rag.find.base import Record
from rag.find.merge import combine, doc_id, group, to_paper
from rag.indexing import Indexer
from rag.pipeline import answer
from rag.read import read_path
from rag.store import Store
from rag.types import Notice, Paper, PaperSection, Quality
from tests.conftest import head_lines, shared


def _record(source: str, **fields) -> Record:
    fields.setdefault("abstract", [PaperSection(title="Abstract", text=f"Text from {source}.")])
    return Record(source=source, key=f"{source}:{fields.get('pmid') or fields.get('doi') or 'x'}", **fields)


def test_records_sharing_any_identifier_or_a_long_title_are_one_paper():
    title = "Vitamin D supplementation and bone mineral density in older adults"
    records = [
        _record("openalex", doi="10.1/a", openalex_id="W1", title=title, cited_by=40),
        _record("pubmed", pmid="11", title=title + ".", pub_types=["Randomized Controlled Trial"]),  # by title
        _record("crossref", doi="10.1/a", title="Other form"),  # by DOI
        _record("europepmc", pmid="11", pmcid="PMC5", title="x"),  # by PMID
        _record("arxiv", arxiv_id="2001.1", title="Correction."),  # short title: never merged on
        _record("pubmed", pmid="12", title="Correction."),
    ]
    groups = group(records)
    assert [len(g) for g in groups] == [4, 1, 1]
    merged = combine(groups[0])
    assert merged.source == "pubmed+europepmc+crossref+openalex"  # curated services first
    assert (merged.pmid, merged.pmcid, merged.doi, merged.openalex_id) == ("11", "PMC5", "10.1/a", "W1")
    assert merged.title == title + "." and merged.cited_by == 40
    assert merged.pub_types == ["Randomized Controlled Trial"]
    assert doc_id(merged) == "pubmed:11"  # the form the PubMedQA corpus uses, so a stored paper is matched
    assert doc_id(_record("arxiv", arxiv_id="2001.1")) == "arxiv:2001.1"


def test_a_structured_abstract_wins_and_notices_make_a_paper_retracted():
    flat = _record(
        "openalex", doi="10.1/b", abstract=[PaperSection(title="Abstract", text="A long flat abstract. " * 9)]
    )
    labelled = _record(
        "pubmed",
        doi="10.1/b",
        pmid="7",
        abstract=[PaperSection(title="Background", text="B."), PaperSection(title="Results", text="R.")],
    )
    merged = combine([flat, labelled])
    assert [s.title for s in merged.abstract] == ["Background", "Results"]
    notice = Notice(kind="retraction", label="Retraction", doi="10.1/notice", date="2023-05-01", source="crossref")
    retracted = combine([merged, _record("crossref", doi="10.1/b", notices=[notice])])
    assert retracted.retracted
    paper = to_paper(retracted)
    assert paper is not None and paper.quality is not None
    assert paper.quality.retracted and paper.quality.notice_line() == "Retraction (10.1/notice, 2023-05-01)"
    assert paper.meta["found_by"] == "pubmed+crossref+openalex" and paper.meta["pmid"] == "7"


def test_a_record_without_text_is_not_a_paper():
    assert to_paper(_record("pubmed", pmid="9", abstract=[])) is None


def test_a_retracted_paper_is_listed_with_a_warning_supports_nothing_and_has_no_vote(settings, tmp_path):
    records = head_lines(shared("pubmedqa"), 60)
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(__import__("json").dumps(r) + "\n" for r in records))
    papers = [p for p in read_path(path) if isinstance(p, Paper)]
    target = next(p for p in papers if p.doc_id == "pubmed:21645374")
    notice = Notice(kind="retraction", label="Retraction", doi="10.9/ret", source="crossref")
    target.quality = Quality(retracted=True, notices=[notice], pub_types=["Journal Article"])
    report = Indexer(Store(settings)).add(papers, "retracted")
    assert report.papers_added == 60
    question = "Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?"
    a = answer(question, collection="retracted", settings=settings)
    src = next(s for s in a.sources if s.doc_id == "pubmed:21645374")
    assert src.retracted and "Retraction (10.9/ret)" in src.notice
    assert "**⚠ RETRACTED: Retraction (10.9/ret)** (left out of the consensus meter)" in a.markdown
    assert a.consensus is not None and all(p.doc_id != src.doc_id for p in a.consensus.papers)
    assert any(f"[{src.number}] out of the consensus meter" in c for c in a.grounding.changes)
    citing = [v for v in a.grounding.sentences if src.number in v.citations]
    assert citing, "the extractive drafter should cite the paper the question is about"
    for v in citing:
        assert v.warning == f"cites retracted [{src.number}]"
        if v.citations == [src.number]:
            assert v.verdict != "supported"  # a retracted paper alone supports nothing
    assert f"⚠ cites a retracted paper [{src.number}]" in a.markdown
    # storing it again unchanged is a no-op; the flag survives the round trip through Chroma
    again = Indexer(Store(settings)).add(papers, "retracted")
    assert again.papers_unchanged == 60 and again.chunks_added == 0
