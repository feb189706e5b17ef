"""The PDF reader: one test per defect a plain text-layer reader has, on PDFs the tests lay out, and the
reader against hand-checked truth on the real PDFs of ../shared/data/pdfs/dev/."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest

from rag.chunk import chunk_paper
from rag.errors import CorruptFileError, EmptyInputError
from rag.lang.normalize import dehyphenate, normalize
from rag.pdf.reader import read_pdf, word_ratio
from rag.read import read_path
from tests.conftest import make_layout_pdf, shared

BODY = 10
PROSE = "We measured the effect of the treatment on bone density in older adults over two years"


def body(lines: list[str], top: float = 200, step: float = 12) -> list[tuple]:
    return [(text, BODY, top + i * step) for i, text in enumerate(lines)]


def paper_of(tmp_path, pages, name="p.pdf", **kw):
    path = tmp_path / name
    path.write_bytes(make_layout_pdf(pages, **kw))
    return read_pdf(path, "file:test")


def body_text(paper) -> str:
    return "\n\n".join(s.text for s in paper.sections if s.kind == "body")


def front(title="Bone Density after Vitamin D Supplementation", authors="Ada Lovelace, Alan Turing"):
    return [(title, 18, 80, 72, True), (authors, 12, 110), ("1 Introduction", 12, 170, 72, True)]


def test_title_authors_and_year_from_page_one_not_the_file_date(tmp_path):
    info = "<< /Title (untitled.dvi) /CreationDate (D:20090101000000) >>"
    page = [("Journal of Bone Research, vol. 3, 1999", 8, 40), *front(), *body([PROSE + "."])]
    paper = paper_of(tmp_path, [page], info=info)
    assert paper.title == "Bone Density after Vitamin D Supplementation"
    assert paper.authors == ["Ada Lovelace", "Alan Turing"]
    assert paper.year == 1999  # printed on page 1; the file was made in 2009


def test_sections_recognised_and_labelled(tmp_path):
    page1 = [*front(), *body([PROSE + "."], top=190)]
    page2 = [
        ("2 Methods", 12, 80, 72, True),
        *body(["Participants were randomised to vitamin D or placebo for two years in total."], top=100),
        ("Results", 12, 140, 72, True),
        *body(["Bone density rose by four percent in the treated group compared with placebo."], top=160),
        ("4.1 Subgroups", 10, 200, 72, True),
        *body(["Older women gained most from the treatment in every measured site of the body."], top=220),
    ]
    paper = paper_of(tmp_path, [page1, page2])
    titles = [s.title for s in paper.sections if s.kind == "body"]
    assert titles == ["1 Introduction", "2 Methods", "Results"]  # a subsection stays inside its section
    assert "4.1 Subgroups" in paper.sections[2].text
    assert paper.report and paper.report.sections == titles


def test_running_headers_and_page_numbers_removed(tmp_path):
    pages = []
    for n in range(1, 5):
        lines = [("PLOS ONE | https://doi.org/10.1371/journal.pone.0001 " + f"{n} / 4", 8, 30)]
        lines += front() if n == 1 else []
        lines += body([f"{PROSE} on page {n}."], top=200)
        lines.append((str(n), 9, 800))
        pages.append(lines)
    paper = paper_of(tmp_path, pages)
    text = body_text(paper)
    assert "PLOS ONE" not in text and not re.search(r"\b[1-4] / 4\b", text)
    assert all(f"on page {n}." in text for n in range(1, 5)) and not re.search(r"\.\s+\d\s*$", text)
    assert paper.report and paper.report.removed_lines >= 8


def test_sentence_across_a_page_break_and_hyphenation(tmp_path):
    page1 = [*front(), *body(["Treatment with vitamin D improved the bone density of the differ-"], top=700)]
    page2 = body(
        ["ent groups. A high-field magnet was used; the high-", "field scans and the high-field images agreed."],
        top=80,
    )
    paper = paper_of(tmp_path, [page1, page2])
    text = body_text(paper)
    assert "improved the bone density of the different groups." in text  # one sentence, rejoined
    assert "the high-field scans" in text  # a compound keeps its hyphen
    chunk = chunk_paper(paper)[0]
    assert (chunk.page_start, chunk.page_end) == (1, 2)


def test_references_split_off_and_parsed(tmp_path):
    page1 = [*front(), *body(["Vitamin D raised bone density [1], as others found [2; 3]."])]
    page2 = [
        ("References", 12, 80, 72, True),
        ("[1] A. Smith. 2010. Calcium and the aging skeleton in women. Bone Journal 3:1-9.", 9, 100),
        ("[2] B. Jones, C. Wu. 2015. A trial of vitamin D. doi:10.1000/xyz.123", 9, 112),
        ("[3] D. Brown. 2018. Falls in the elderly.", 9, 124),
    ]
    paper = paper_of(tmp_path, [page1, page2])
    text = " ".join(c.text for c in chunk_paper(paper))
    assert "Calcium and the aging skeleton" not in text and "Falls in the elderly" not in text
    assert "Vitamin D raised bone density, as others found." in text  # the paper's own markers are gone
    assert [r.year for r in paper.references] == [2010, 2015, 2018]
    assert paper.references[0].title == "Calcium and the aging skeleton in women"
    assert paper.references[1].doi == "10.1000/xyz.123"
    assert paper.doi is None  # a DOI in the reference list is not the paper's


def test_declarations_and_keywords_kept_with_the_paper_never_searched(tmp_path):
    """Thanks, funding and keyword lists are statements about the work, not findings: an answer must never
    quote them, yet the paper keeps them; an appendix after them is read as content again."""
    page1 = [
        *front()[:2],
        ("Abstract", 12, 140, 72, True),
        *body(["Weekly vitamin D raised bone density in older adults, a trial of two years found."], top=160),
        ("KEYWORDS", 12, 190, 72, True),
        ("bone density, vitamin D, older adults", BODY, 210),
        ("1 Introduction", 12, 240, 72, True),
        *body([PROSE + "."], top=260),
    ]
    page2 = [
        ("Acknowledgments", 12, 80, 72, True),
        *body(["We thank the nurses of the trial for their help and the foundation for its funding."], top=100),
        ("Appendix A. Dosing schedule", 12, 140, 72, True),
        *body(["Doses of vitamin D were given weekly with meals to every participant of the trial."], top=160),
    ]
    paper = paper_of(tmp_path, [page1, page2])
    kinds = {s.title: s.kind for s in paper.sections}
    assert kinds["KEYWORDS"] == "keywords" and kinds["Acknowledgments"] == "declaration"
    assert kinds["Appendix A. Dosing schedule"] == "body"
    text = " ".join(c.text for c in chunk_paper(paper))
    assert "nurses" not in text and "older adults over two years" in text and "given weekly" in text
    assert "bone density, vitamin D, older adults" not in text


def test_captions_and_figure_debris_kept_out_of_the_running_text(tmp_path):
    page1 = [
        *front(),
        *body([PROSE + " and found a clear rise in"], top=200),
        ("Figure 1: Bone density by group over time.", 9, 240),
        ('!"# $!"# %&\'', 9, 260),
        *body(["density among the treated adults."], top=280),
    ]
    paper = paper_of(tmp_path, [page1])
    text = body_text(paper)
    assert "found a clear rise in density among the treated adults." in text
    assert "Figure 1" not in text and '!"#' not in text
    captions = [s for s in paper.sections if s.kind == "caption"]
    assert captions and captions[0].title == "Figure 1" and "by group over time" in captions[0].text


def test_garbage_text_layer_is_reported(tmp_path):
    junk = ["Tlie rcsnlts sliow tliat tbe trcatmcnt w a s cffcctivc iu 3O% o f tlie" for _ in range(6)]
    paper = paper_of(tmp_path, [[*front(), *body(junk)]])
    assert paper.report and paper.report.ocr_suspected
    assert any("known words" in w and "OCR" in w for w in paper.report.warnings)
    assert word_ratio(PROSE) == 1.0


def test_image_only_pdf_is_a_clear_error_and_zero_text_pages(tmp_path):
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_layout_pdf([[], []]))
    (err,) = list(read_path(path))
    assert isinstance(err, EmptyInputError) and "--ocr" in err.reason and str(path) in str(err)


def test_truncated_pdf_is_typed(tmp_path):
    path = tmp_path / "cut.pdf"
    path.write_bytes(make_layout_pdf([body([PROSE + "."])])[:300])
    (err,) = list(read_path(path))
    assert isinstance(err, (CorruptFileError, EmptyInputError)) and str(path) in str(err)


def test_many_pages_stream_in_bounded_memory(tmp_path):
    import resource

    pages = [body([f"{PROSE} on page {n}."] * 40, top=120) for n in range(500)]
    path = tmp_path / "long.pdf"
    path.write_bytes(make_layout_pdf(pages))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    paper = read_pdf(path, "file:long")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert paper.report and paper.report.pages == 500
    assert grown_mb < 300, grown_mb  # 20,000 lines of text, not 500 rendered pages


def test_normalisation_for_every_input_kind(tmp_path):
    assert normalize("reﬁned M¨uhlenberg\x07 10⁹", accents=True) == "refined Mühlenberg 10⁹"
    assert normalize("use `foo` and don´t; 1\x964; a\fb") == "use `foo` and don´t; 1–4; a\fb"  # not a PDF: as written
    assert dehyphenate("the differ-\nent groups and a high-\nfield magnet; high-field") == (
        "the different groups and a high-field magnet; high-field"
    )
    note = tmp_path / "note.txt"
    note.write_text("Notes\n\nThe reﬁned assay was differ-\nent from the old one.", encoding="utf-8")
    (paper,) = list(read_path(note))
    assert "refined assay was different from" in paper.text


# -- the real PDFs against their hand-checked truth ------------------------------------------
def _norm(text: str | None) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", unicodedata.normalize("NFKC", text or "").casefold()).split())


@pytest.fixture(scope="module")
def dev_papers():
    truth_path = shared("pdfs/dev", "truth.json")
    truth = json.loads(truth_path.read_text())
    return [(t, read_pdf(truth_path.parent / t["file"], f"file:{t['file']}")) for t in truth]


def test_dev_pdfs_metadata(dev_papers):
    titled = [(t, p) for t, p in dev_papers if t["title"]]
    assert sum(_norm(p.title) == _norm(t["title"]) for t, p in titled) >= 0.95 * len(titled)
    authors = [(a, p) for t, p in dev_papers for a in t["authors"]]
    assert sum(_norm(a) in {_norm(x) for x in p.authors} for a, p in authors) >= 0.9 * len(authors)
    assert sum(p.year == t["year"] for t, p in dev_papers) >= 14
    assert all((p.doi or "").lower() == (t["doi"] or "").lower() for t, p in dev_papers)


def test_dev_pdfs_sections_and_no_leakage(dev_papers):
    strip = lambda h: re.sub(r"^((\d+|[ivx]+|[a-h])(\.\d+)*)\s+", "", _norm(h))  # noqa: E731
    found = total = 0
    for t, p in dev_papers:
        assert p.report is not None
        heads = {strip(h) for h in p.report.sections}
        found += sum(strip(h) in heads for h in t["sections"])
        total += len(t["sections"])
        chunks = [_norm(c.text) for c in chunk_paper(p)]
        for probe in t["reference_probe"] + t["running_header_lines"]:
            assert not any(_norm(probe) in c for c in chunks), (t["file"], probe)
        assert all(c.page_start is not None for c in chunk_paper(p))
    assert found >= 0.9 * total


def test_dev_pdfs_hyphenation_and_facts(dev_papers):
    hyphenated = [(w, p) for t, p in dev_papers for w in t["hyphenated_words"]]
    intact = sum(bool(re.search(rf"\b{w}\b", _norm(body_text(p)))) for w, p in hyphenated)
    assert intact >= 0.9 * len(hyphenated)
    s2orc = next(p for t, p in dev_papers if t["file"].startswith("papermage_2020"))
    assert "81.1M" in body_text(s2orc) and "8.1M" in body_text(s2orc)


# -- the PDF path end to end: CLI, sidecar metadata, stored reports, pages in answers ---------
def test_pdf_ingest_end_to_end(settings, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rag.cli import app
    from rag.pipeline import answer

    monkeypatch.setenv("RAG_HOME", str(settings.home))
    pdf = tmp_path / "papers" / "vitd.pdf"
    pdf.parent.mkdir()
    page1 = [*front(title="Untitled Draft"), *body([PROSE + " and found that bone density rose by 4 percent."])]
    page2 = [
        ("2 Results", 12, 80, 72, True),
        *body(["Vitamin D supplementation raised bone density by 4 percent."], 100),
        ("Funding", 12, 140, 72, True),
        *body(["The trial was paid for by the Bone Foundation of Utrecht."], 160),
    ]
    pdf.write_bytes(make_layout_pdf([page1, page2]))
    bib = tmp_path / "library.bib"
    bib.write_text("@article{vd, title = {Vitamin {D} and Bone Density}, author = {Curie, Marie}, year = 2021,\n"
                   "  file = {papers/vitd.pdf}}\n")  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(pdf.parent), "--bib", str(bib), "-c", "pdfs", "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["papers_added"] == 1 and report["documents"][0]["pages"] == 2

    again = runner.invoke(app, ["ingest", str(pdf.parent), "-c", "pdfs", "--json", "--no-progress"])
    assert (
        json.loads(again.stdout)["papers_unchanged"] == 1 and json.loads(again.stdout)["documents"] == []
    )  # not re-read
    with_bib = runner.invoke(
        app, ["ingest", str(pdf.parent), "--bib", str(bib), "-c", "pdfs", "--json", "--no-progress"]
    )
    assert json.loads(with_bib.stdout)["papers_unchanged"] == 1  # re-read for the metadata, nothing re-embedded

    papers = json.loads(runner.invoke(app, ["papers", "-c", "pdfs", "--json"]).stdout)
    assert papers[0]["title"] == "Vitamin D and Bone Density" and papers[0]["authors"] == ["Marie Curie"]
    assert (
        papers[0]["year"] == 2021
        and papers[0]["pages"] == 2
        and papers[0]["sections"] == ["1 Introduction", "2 Results", "Funding"]
        and papers[0]["declarations"] == ["Funding"]
    )
    exported = [
        json.loads(line) for line in runner.invoke(app, ["export", "-c", "pdfs", "--jsonl"]).stdout.splitlines()
    ]
    assert {(c["page_start"], c["page_end"]) for c in exported} <= {(1, 1), (1, 2), (2, 2)}
    assert not any("Bone Foundation" in c["text"] for c in exported)  # stored on the paper, not as a chunk
    assert "Bone Foundation" in json.loads(exported[0]["paper_info"])["declarations"][0]["text"]

    a = answer("How much did vitamin D raise bone density?", collection="pdfs", settings=settings)
    assert a.citations and all(c.page_start in (1, 2) for c in a.citations)
    assert re.search(r"^1\. .*Vitamin D and Bone Density, p\. [12]", a.markdown, re.MULTILINE), a.markdown

    missing = runner.invoke(app, ["ingest", str(pdf), "--bib", str(tmp_path / "nope.bib"), "-c", "pdfs"])
    assert missing.exit_code == 2 and "nope.bib" in missing.stderr


def test_ocr_through_the_reader(tmp_path):
    from rag.pdf.ocr import tesseract_available

    if not tesseract_available():
        pytest.skip("Tesseract is not installed (apt-get install tesseract-ocr; .ci/run installs it)")
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1700, 2200), 255)
    font = ImageFont.load_default(size=60)
    for i, line in enumerate(["Vitamin D supplementation", "reduced fractures by twenty", "percent in older adults."]):
        ImageDraw.Draw(image).text((150, 200 + 100 * i), line, fill=0, font=font)
    path = tmp_path / "scan.pdf"
    image.save(path, "PDF", resolution=200)
    (paper,) = list(read_path(path, ocr=True))
    assert paper.report and paper.report.ocr_used and "fractures" in paper.text.lower()


# -- regressions found in review ------------------------------------------------------------
def test_a_page_pdfium_cannot_load_is_skipped_not_fatal(tmp_path):
    good = make_layout_pdf([[*front(), *body([PROSE + "."])], body(["Second page."])])
    broken = good.replace(b"/Kids [3 0 R 5 0 R]", b"/Kids [3 0 R 99 0 R]")  # page 2 points nowhere
    assert broken != good
    path = tmp_path / "broken.pdf"
    path.write_bytes(broken)
    results = list(read_path(path))
    assert len(results) == 1  # a paper or a typed error naming the file: never an exception
    result = results[0]
    if isinstance(result, Exception):
        assert isinstance(result, (CorruptFileError, EmptyInputError)) and str(path) in str(result)
    else:
        assert PROSE in body_text(result)


def test_brackets_that_are_not_citations_stay(tmp_path):
    text = "Scores lie in the range [0, 1] and x[2] is the second entry, as shown before [4]."
    paper = paper_of(tmp_path, [[*front(), *body([text])]])
    assert "Scores lie in the range [0, 1] and x[2] is the second entry, as shown before." in body_text(paper)


def test_soft_hyphen_keeps_a_words_own_hyphen():
    from rag.pdf.structure import join_line

    assert join_line("the Navier", True, "Stokes equations", set()) == "the Navier-Stokes equations"
    assert join_line("a state-of-the-", False, "art model", set()) == "a state-of-the-art model"
    assert join_line("the differ", True, "ent groups", set()) == "the different groups"


def test_unchanged_pdf_is_read_again_when_chunking_changes(settings, tmp_path):
    from rag.indexing import Indexer
    from rag.store import Store

    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(make_layout_pdf([[*front(), *body([PROSE + "."] * 30)]]))
    first = Indexer(Store(settings)).ingest([pdf], collection="pdfp")
    assert first.papers_added == 1 and Indexer(Store(settings)).ingest([pdf], collection="pdfp").papers_unchanged == 1
    smaller = settings.model_copy(update={"chunk": settings.chunk.model_copy(update={"max_tokens": 100})})
    again = Indexer(Store(smaller)).ingest([pdf], collection="pdfp")
    assert again.papers_updated == 1 and again.chunks_added > first.chunks_added


def test_a_page_without_text_in_a_text_pdf_is_reported(tmp_path):
    paper = paper_of(tmp_path, [[*front(), *body([PROSE + "."])], []])
    assert paper.report and any("page(s) 2 have no text layer" in w for w in paper.report.warnings)


def test_a_scanned_page_inside_a_text_pdf_is_read_by_ocr(tmp_path):
    from rag.pdf.ocr import tesseract_available

    if not tesseract_available():
        pytest.skip("Tesseract is not installed (apt-get install tesseract-ocr; .ci/run installs it)")
    from PIL import Image, ImageDraw, ImageFont
    from pypdf import PdfReader, PdfWriter

    text_pdf = tmp_path / "text.pdf"
    text_pdf.write_bytes(make_layout_pdf([[*front(), *body([PROSE + "."])]]))
    image = Image.new("L", (1700, 2200), 255)
    ImageDraw.Draw(image).text((150, 300), "Calcium intake and falls", fill=0, font=ImageFont.load_default(size=70))
    scan = tmp_path / "scan.pdf"
    image.save(scan, "PDF", resolution=200)
    writer = PdfWriter()
    for part in (text_pdf, scan):
        for page in PdfReader(part).pages:
            writer.add_page(page)
    mixed = tmp_path / "mixed.pdf"
    with mixed.open("wb") as f:
        writer.write(f)
    (paper,) = list(read_path(mixed, ocr=True))
    ocr_sections = [s for s in paper.sections if s.title == "Page 2 (OCR)"]
    assert ocr_sections and "falls" in ocr_sections[0].text.lower() and paper.report and paper.report.ocr_used


def test_a_question_asked_of_one_paper_reads_more_than_two_of_its_chunks(settings):
    """The per-paper cap spreads evidence over papers; asked of one paper, its further chunks fill the list, and
    the extractive answer states the counted answer ("ten participants") though other sentences score higher."""
    from rag.indexing import Indexer
    from rag.pipeline import answer
    from rag.retrieve import Retriever
    from rag.store import Store
    from rag.types import Filters

    pdf = shared("pdfs/dev", "papermage_2302.07302v1.pdf")
    Indexer(Store(settings)).ingest([pdf], collection="one")
    (doc_id,) = {e.chunk.doc_id for e in Retriever(settings, collection="one").search("CiteSee", k=3)}
    question = "How many participants took part in CiteSee's Study 1 lab study, and how much was each compensated?"
    only = Filters(doc_ids=[doc_id])
    hits = Retriever(settings, collection="one").search(question, filters=only)
    assert len(hits) == settings.retrieve.k > settings.retrieve.per_paper
    a = answer(question, collection="one", settings=settings, filters=only, drafter="extractive")
    assert "ten participants" in a.markdown and "$35 USD" in a.markdown
