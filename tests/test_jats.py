"""The JATS reader: against facts checked by hand in two real Europe PMC full texts (NAR 2012, NLM archiving DTD
3.0; a Springer review, JATS 1.3) from ../shared/data/api, and one test per rule on articles the tests write."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from rag.errors import CorruptFileError, EmptyInputError
from rag.jats import is_jats, read_jats
from rag.lang.sentences import split_sentences
from rag.types import Paper
from tests.conftest import shared

NAR = "europepmc/fullTextXML_PMC3258128.xml"
REVIEW = "europepmc/fullTextXML_PMC12311175.xml"
MARKUP = re.compile(r"<[A-Za-z/!?]|mml:|xlink:|&#?\w+;")


def api_file(name: str) -> Path:
    return shared("api", name)


def read(name: str) -> Paper:
    path = api_file(name)
    return read_jats(path.read_bytes(), "pmc:test", str(path))


def body(paper: Paper) -> str:
    return "\n\n".join(s.text for s in paper.sections if s.kind == "body")


def everything(paper: Paper) -> list[str]:
    return [paper.title, *paper.authors, *(t for s in paper.sections for t in (s.title, s.text))] + [
        r.raw for r in paper.references
    ]


# --- the NAR paper (PMC3258128) -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nar() -> Paper:
    return read(NAR)


def test_nar_metadata(nar: Paper) -> None:
    assert nar.title == (
        "Hepato-specific microRNA-122 facilitates accumulation of newly synthesized miRNA through regulating PRKRA"
    )
    assert len(nar.authors) == 12
    assert (nar.authors[0], nar.authors[-1]) == ("Shuai Li", "Xiaofei Zheng")
    assert nar.year == 2011  # epub 21 Sep 2011; ppub and collection Jan 2012
    assert nar.doi == "10.1093/nar/gkr715"
    assert nar.arxiv_id is None
    assert nar.meta["pmcid"] == "PMC3258128"
    assert "pmid" not in nar.meta  # the file gives none
    assert nar.meta["journal"] == "Nucleic Acids Research"
    assert nar.meta["license"] == "http://creativecommons.org/licenses/by-nc/3.0"


def test_nar_sections_in_order(nar: Paper) -> None:
    titles = [s.title for s in nar.sections if s.kind == "body"]
    methods = "MATERIALS AND METHODS — "
    assert titles[:5] == [
        "Abstract",
        "INTRODUCTION",
        f"{methods}Cell lines and cultures",
        f"{methods}Affinity purification experiments",
        f"{methods}Real-time qRT–PCR for mRNA",
    ]
    assert titles[-5:] == [
        "RESULTS — Affinity purification of miR-122 target mRNAs",
        "RESULTS — Interaction between miR-122 and the 3′-UTR of PRKRA mRNA",
        "RESULTS — PRKRA is a potential target of miR-122",
        "RESULTS — miR-122 facilitates accumulation of newly synthesized miRNA through downregulate PRKRA",
        "DISCUSSION",
    ]
    assert len(titles) == 18  # abstract, introduction, 11 methods, 4 results, discussion
    # supplementary-data pointers and the funding statement are declarations, not findings
    assert not any(re.search(r"SUPPLEMENTARY|FUNDING|Supplementary Material", t) for t in titles)
    assert "Chinese State Key Projects" not in body(nar)
    assert nar.sections[0].text.startswith("microRNAs (miRNAs) are a versatile class of non-coding RNAs")


def test_nar_figures_are_captions_kept_out_of_the_text(nar: Paper) -> None:
    captions = [s for s in nar.sections if s.kind == "caption"]
    assert [s.title for s in captions] == ["Figure 1", "Figure 2", "Figure 3", "Figure 4", "Figure 5"]
    assert captions[0].text.startswith("Figure 1. Affinity purification with biotin-tagged miR-122")
    assert all(s.kind == "body" for s in nar.sections[: nar.sections.index(captions[0])])  # captions after the text
    text = body(nar)
    assert "Affinity purification with biotin-tagged miR-122 from human hepatoma" not in text
    # the sentence the <fig> is set in, with its printed citation and figure markers, whole
    sentence = (
        "We validated the technique using a biotin-tagged miR-122 targeting several reported targets such as "
        "CAT-1 (13), ADAM17 (22) and BCL-w (20). Affinity purification experiments in HepG2 cells resulted in a "
        "2- to 19-fold enrichment of these endogenous targets (Figure 1)."
    )
    assert sentence in text
    assert "translation repression (1)." in text  # "(<xref>1</xref>)" printed as it stands


def test_nar_references(nar: Paper) -> None:
    data = api_file(NAR).read_bytes()
    assert len(nar.references) == len(re.findall(rb"<ref[\s>]", data)) == 47
    first = nar.references[0]
    assert first.title == "MicroRNAs: genomics, biogenesis, mechanism, and function"
    assert (first.year, first.doi) == (2004, None)  # the NAR references give PubMed ids, no DOIs
    assert first.raw == "Bartel DP (2004). MicroRNAs: genomics, biogenesis, mechanism, and function. Cell 116:281–297."
    ref30 = nar.references[29]
    assert ref30.title == "PACT, a protein activator of the interferon-induced protein kinase, PKR"
    assert ref30.year == 1998
    text = body(nar)
    assert all(r.title not in text for r in nar.references if r.title)  # the reference list is never body text


def test_nar_has_no_furniture(nar: Paper) -> None:
    text = "\n".join(everything(nar)[len(nar.authors) + 1 :])
    for furniture in ("Oxford University Press", "Creative Commons", "Beijing Institute of Radiation Medicine",
                      "xfzheng100@126.com", "To whom correspondence", "joint First Authors"):  # fmt: skip
        assert furniture not in text
    assert all(not s.pages for s in nar.sections)


# --- the Springer review (PMC12311175) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def review() -> Paper:
    return read(REVIEW)


def test_review_metadata(review: Paper) -> None:
    assert review.title == "Immune evasion in cancer: mechanisms and cutting-edge therapeutic approaches"
    assert review.authors == ["Muhammad Tufail", "Can-Hua Jiang", "Ning Li"]
    assert review.year == 2025
    assert review.doi == "10.1038/s41392-025-02280-1"
    assert review.meta["pmcid"] == "PMC12311175"
    assert review.meta["pmid"] == "40739089"
    assert review.meta["journal"] == "Signal Transduction and Targeted Therapy"
    assert review.meta["license"] == "https://creativecommons.org/licenses/by/4.0/"  # <ali:license_ref>


def test_review_sections_in_order(review: Paper) -> None:
    titles = [s.title for s in review.sections if s.kind == "body"]
    assert titles[:4] == [
        "Abstract",
        "Introduction",
        "Mechanisms of immune evasion in cancer — Tumor-induced immune suppression",
        "Mechanisms of immune evasion in cancer — Immune checkpoint regulation",
    ]
    # a parent's own text before its first subsection keeps the parent's title
    assert titles.index("Impact of tumor heterogeneity on immune evasion") + 1 == titles.index(
        "Impact of tumor heterogeneity on immune evasion — Intra-tumor heterogeneity"
    )
    assert titles[-2:] == ["Challenges and future directions", "Conclusion"]
    assert len(titles) == 30
    assert not any(re.search(r"Acknowledg|Author contributions|Competing interests|Consent", t) for t in titles)
    text = body(review)
    assert "Central South University Research Program" not in text  # the acknowledgements
    assert "Springer Nature remains neutral" not in text  # the publisher's footnote
    assert "The authors declare no competing interests" not in text


def test_review_floats(review: Paper) -> None:
    captions = {s.title: s for s in review.sections if s.kind == "caption"}
    tables = {s.title: s for s in review.sections if s.kind == "table"}
    assert list(captions) == [f"Fig. {i}" for i in (1, 2, 3)] + ["Table 1", "Table 2", "Table 3"] + [
        "Fig. 4", "Fig. 5", "Fig. 6", "Table 4", "Table 5", "Table 6", "Fig. 7", "Table 7", "Fig. 8", "Fig. 9",
    ]  # fmt: skip
    assert list(tables) == [f"Table {i}" for i in range(1, 8)]
    assert captions["Table 1"].text == "Table 1 Role of miRNAs in immune evasion in cancer"
    rows = tables["Table 1"].text.split("\n")
    assert rows[0] == "miRNA | Role | Effect on immune evasion | Reference"
    # the citation column keeps its numbers (left out of prose, they are the cell's content here)
    assert rows[1] == (
        "miR-21 | Oncogenic | Promotes immune suppression by upregulating PD-L1 expression and inhibiting apoptosis "
        "in T cells. | 214,543,544"
    )
    text = body(review)
    assert "This figure illustrates the diverse mechanisms by which cancer cells evade" not in text
    assert "miR-21 | Oncogenic" not in text
    # the paragraph the <fig> closes ends with its own last sentence, the caption not run into it
    assert "The immune system typically identifies and eliminates malignant cells.\n\n" in text


def test_review_superscript_citations_leave_sentences_whole(review: Paper) -> None:
    text = body(review)
    # "<p>… without restriction.<sup><xref>14</xref></sup> Specifically, …"
    passage = next(p for p in text.split("\n\n") if "multiply without restriction." in p)
    sentences = split_sentences(passage)
    assert (
        "This involves forming an immunosuppressive microenvironment that hinders immune cell function and growth, "
        "allowing tumor cells to persist and multiply without restriction."
    ) in sentences
    assert not re.search(r"[a-z)][.,]\d{1,3}(?:,\d{1,3})*\s", text)  # no "restriction.14 Specifically"


def test_review_references(review: Paper) -> None:
    data = api_file(REVIEW).read_bytes()
    assert len(review.references) == len(re.findall(rb"<ref[\s>]", data)) == 640
    first = review.references[0]
    assert first.raw == "Caner, A. Immune escape mechanism of cancer. Curr. Mol. Biol. Rep. 10, 9–19 (2024)."
    assert (first.title, first.year, first.doi) == ("Immune escape mechanism of cancer", 2024, None)
    # ref 3 is printed only (no tagged fields): the title is read off the printed text
    third = review.references[2]
    assert third.title == (
        "Targets of immune escape mechanisms in cancer: basis for development and evolution of cancer immune "
        "checkpoint inhibitors"
    )
    assert third.year == 2023
    last = review.references[-1]
    assert (
        last.title
        == "PS1301 potent anti-tumor activity of DUOBODY®-CD3XCD20 in preclinical models in vitro and in vivo"
    )
    assert last.year == 2019
    assert "26834161" not in review.references[3].raw  # a PubMed id in <pub-id> is a link, not printed text
    text = body(review)
    assert "Immune escape mechanism of cancer" not in text
    assert "Curr. Mol. Biol. Rep." not in text


def test_review_has_no_furniture(review: Paper) -> None:
    text = "\n".join(everything(review)[len(review.authors) + 1 :])
    for furniture in ("The Author(s) 2025", "This article is licensed under", "Xiangya Hospital",
                      "liningoms@csu.edu.cn", "National Natural Science Foundation"):  # fmt: skip
        assert furniture not in text


@pytest.mark.parametrize("name", [NAR, REVIEW])
def test_no_markup_leaks(name: str) -> None:
    paper = read(name)
    leaks = [t[:80] for t in everything(paper) if MARKUP.search(t)]
    assert not leaks
    assert all(s.text == s.text.strip() and "  " not in s.text for s in paper.sections)


def test_the_long_review_reads_fast() -> None:
    data = api_file(REVIEW).read_bytes()
    start = time.perf_counter()
    read_jats(data, "pmc:test")
    assert time.perf_counter() - start < 1.0  # about 0.05 s here for its 795 KB


def test_is_jats() -> None:
    assert is_jats(api_file(NAR).read_bytes())
    assert is_jats(api_file(REVIEW).read_bytes())
    assert not is_jats(api_file("pubmed/efetch_pubmed_28775130_structured_abstract.xml").read_bytes())
    assert not is_jats(api_file("arxiv/id_list_1605.08386.atom.xml").read_bytes())
    assert not is_jats(api_file("europepmc/search_cancer_lite.xml").read_bytes())
    assert not is_jats(b'<article xmlns="http://docbook.org/ns/docbook"><title>T</title></article>')
    assert is_jats(b"<pmc-articleset><article article-type='x'><front><article-meta/></front></article>")
    assert not is_jats(b"")


# --- rules, on articles written here --------------------------------------------------------------------------


def article(body: str = "", front: str = "", back: str = "", root: str = "article", attrs: str = "") -> bytes:
    meta = f"<front><article-meta>{front}</article-meta></front>"
    ns = ' xmlns:mml="http://www.w3.org/1998/Math/MathML" xmlns:xlink="http://www.w3.org/1999/xlink"'
    return f"<{root}{ns}{attrs}>{meta}<body>{body}</body><back>{back}</back></{root}>".encode()


def test_malformed_xml_names_the_source() -> None:
    with pytest.raises(CorruptFileError) as err:
        read_jats(b"<article><front></article>", "pmc:1", "papers/broken.nxml")
    assert err.value.source == "papers/broken.nxml"
    assert "malformed XML" in err.value.reason
    with pytest.raises(CorruptFileError) as err:
        read_jats(b"<article", "pmc:1")
    assert err.value.source == "pmc:1"  # no source: the id names it
    with pytest.raises(CorruptFileError):
        read_jats(b'<?xml version="1.0" encoding="klingon"?><article/>', "pmc:1")
    paper = read_jats(article(body="<p>Caf&eacute;&nbsp;au lait &amp; milk.</p>"), "pmc:1")  # HTML entities
    assert paper.sections[0].text == "Café au lait & milk."


def test_xml_that_is_no_jats_article() -> None:
    for data in (
        api_file("pubmed/efetch_pubmed_28775130_structured_abstract.xml").read_bytes(),
        api_file("arxiv/id_list_1605.08386.atom.xml").read_bytes(),
        b'<article xmlns="http://docbook.org/ns/docbook"><section><para>Text</para></section></article>',
    ):
        with pytest.raises(CorruptFileError, match="not a JATS article"):
            read_jats(data, "x:1", "f.xml")


def test_an_article_with_nothing_in_it() -> None:
    title = "<title-group><article-title>Only a title</article-title></title-group>"
    with pytest.raises(EmptyInputError, match="no abstract and no body"):
        read_jats(article(front=title, body="<sec><title>Funding</title><p>Grant 1.</p></sec>"), "x:1", "e.xml")
    with pytest.raises(EmptyInputError):
        read_jats(b"  \n", "x:1", "e.xml")


def test_wrapped_and_namespaced_articles() -> None:
    inner = article(body="<p>Plain text body.</p>").decode()
    paper = read_jats(f"<pmc-articleset>{inner}</pmc-articleset>".encode(), "x:1")
    assert paper.sections[0].text == "Plain text body."
    assert paper.sections[0].title == ""  # a body without sections has no heading, like an unheaded PDF
    oai = (
        '<OAI-PMH><GetRecord><record><metadata><article xmlns="https://jats.nlm.nih.gov/ns/archiving/1.3/">'
        "<front><article-meta><title-group><article-title>Namespaced</article-title></title-group>"
        "</article-meta></front><body><sec><title>Results</title><p>It works.</p></sec></body></article>"
        "</metadata></record></GetRecord></OAI-PMH>"
    )
    paper = read_jats(oai.encode(), "x:2")
    assert (paper.title, paper.sections[0].title, paper.sections[0].text) == ("Namespaced", "Results", "It works.")


def test_a_float_inside_a_sentence_does_not_split_it() -> None:
    body = (
        "<sec><title>Results</title><p>Bone density rose by 4%"
        '<fig id="f1"><label>Figure 1.</label><caption><title>Density.</title><p>Bars show means.</p></caption>'
        '<graphic xlink:href="f1"/></fig> in the treated group '
        "<table-wrap><label>Table 1</label><caption><p>Doses</p></caption><table><thead><tr><th>Dose</th>"
        "<th>n</th></tr></thead><tbody><tr><td>10 mg</td><td>12</td></tr></tbody></table>"
        "<table-wrap-foot><fn><p><sup>a</sup> P &lt; 0.05</p></fn></table-wrap-foot></table-wrap>"
        "(Fig. 1).</p></sec>"
    )
    paper = read_jats(article(body=body), "x:1")
    assert [(s.title, s.kind) for s in paper.sections] == [
        ("Results", "body"),
        ("Figure 1", "caption"),
        ("Table 1", "caption"),
        ("Table 1", "table"),
    ]
    assert paper.sections[0].text == "Bone density rose by 4% in the treated group (Fig. 1)."
    assert paper.sections[1].text == "Figure 1. Density. Bars show means."
    assert paper.sections[3].text == "Dose | n\n10 mg | 12\nᵃ P < 0.05"


def test_structured_abstract_nested_sections_and_back_matter() -> None:
    front = (
        '<abstract abstract-type="graphical"><p>A picture.</p></abstract>'
        "<abstract><sec><title>Background:</title><p>Why.</p></sec><sec><title>Methods</title><p>How.</p></sec>"
        "</abstract>"
    )
    body = (
        "<sec><label>2</label><title>Methods</title><p>Overview.</p><sec><title>Cohort</title><p>Adults.</p>"
        "<sec><title>Exclusions</title><p>None.</p></sec></sec></sec>"
        '<sec sec-type="COI-statement"><title>Disclosure</title><p>None declared.</p></sec>'
        "<sec><title>Author Contributions</title><p>A wrote it.</p></sec>"
    )
    back = (
        "<ack><title>Acknowledgements</title><p>We thank B.</p></ack><fn-group><fn><p>A footnote.</p></fn></fn-group>"
        '<notes notes-type="data-availability"><p>On request.</p></notes>'
        "<app-group><app><title>Appendix A. Extra tables</title><p>More data.</p></app>"
        "<app><p>Untitled appendix.</p></app></app-group>"
        '<ref-list><ref id="r1"><element-citation publication-type="book"><person-group><collab>WHO</collab>'
        "</person-group><source>Global report</source><year>2019b</year><publisher-name>WHO Press</publisher-name>"
        '<pub-id pub-id-type="doi">10.1000/ABC.1</pub-id></element-citation></ref></ref-list>'
    )
    paper = read_jats(article(body=body, front=front, back=back), "x:1")
    assert [(s.title, s.text) for s in paper.sections] == [
        ("Background", "Why."),
        ("Methods", "How."),
        ("2 Methods", "Overview."),
        ("2 Methods — Cohort", "Adults."),
        ("2 Methods — Cohort — Exclusions", "None."),
        ("Appendix A. Extra tables", "More data."),
        ("Appendix", "Untitled appendix."),
    ]
    [ref] = paper.references
    assert (ref.title, ref.year, ref.doi) == ("Global report", 2019, "10.1000/abc.1")  # a book's source is its title
    assert ref.raw == "WHO (2019b). Global report. WHO Press. doi:10.1000/ABC.1"


def test_formulas_lists_and_superscripts() -> None:
    math = (
        '<disp-formula id="e1"><label>(1)</label><alternatives><mml:math><mml:mrow><mml:msup><mml:mi>x</mml:mi>'
        "<mml:mn>2</mml:mn></mml:msup><mml:mo>+</mml:mo><mml:mfrac><mml:mi>a</mml:mi><mml:mrow><mml:mi>b</mml:mi>"
        "<mml:mo>+</mml:mo><mml:mn>1</mml:mn></mml:mrow></mml:mfrac><mml:mo>=</mml:mo><mml:msub><mml:mi>y</mml:mi>"
        "<mml:mi>i</mml:mi></mml:msub></mml:mrow></mml:math><tex-math>\\documentclass{minimal}\\begin{document}"
        "$$x^2$$\\end{document}</tex-math></alternatives></disp-formula>"
    )
    body = (
        f"<sec><title>Model</title><p>We fit{math}to 10<sup>−9</sup> M Ca<sup>2+</sup> and CO<sub>2</sub>.</p>"
        '<p>Steps:<list list-type="order"><list-item><p>Mix.</p></list-item><list-item><p>Spin.</p></list-item>'
        "</list>Then wait&nbsp;5 min.</p></sec>"
    )
    paper = read_jats(article(body=body), "x:1")
    assert paper.sections[0].text.split("\n\n") == [
        "We fit x^2 + a/(b + 1) = y_i (1) to 10⁻⁹ M Ca²⁺ and CO2.",
        "Steps:",
        "1. Mix.",
        "2. Spin.",
        "Then wait 5 min.",
    ]


def test_front_matter_rules() -> None:
    front = (
        '<article-id pub-id-type="pmc">PMC777</article-id><article-id pub-id-type="doi">https://doi.org/10.1000/X.Y'
        "</article-id><title-group><article-title>A <italic>bold</italic> claim<xref ref-type='fn'>*</xref>"
        "</article-title><subtitle>and its test</subtitle></title-group>"
        '<contrib-group><contrib contrib-type="author"><name><surname>Lovelace</surname><given-names>Ada</given-names>'
        '</name><aff>Somewhere</aff></contrib><contrib contrib-type="editor"><name><surname>Ed</surname></name>'
        '</contrib><contrib contrib-type="author"><collab>The Bone Group<contrib-group><contrib><name>'
        "<surname>Member</surname></name></contrib></contrib-group></collab></contrib></contrib-group>"
        '<pub-date date-type="pub" publication-format="print"><year>2020</year></pub-date>'
        '<pub-date date-type="pub" publication-format="electronic"><day>3</day><year>2019</year></pub-date>'
        '<pub-date pub-type="pmc-release"><year>2018</year></pub-date>'
        "<permissions><license><license-p>Free to read. Reuse needs permission.</license-p></license></permissions>"
        "<abstract><p>Text.</p></abstract>"
    )
    paper = read_jats(article(front=front), "x:1")
    assert paper.title == "A bold claim: and its test"
    assert paper.authors == ["Ada Lovelace", "The Bone Group"]
    assert paper.year == 2019
    assert paper.doi == "10.1000/x.y"
    assert (paper.meta["pmcid"], paper.meta["license"]) == ("PMC777", "Free to read.")
    assert [s.title for s in paper.sections] == ["Abstract"]


def test_rag_ingest_reads_a_jats_file_and_refuses_other_xml(tmp_path, settings):
    from rag.indexing import Indexer
    from rag.store import Store

    article = tmp_path / "PMC3258128.nxml"
    article.write_bytes(api_file(NAR).read_bytes())
    other = tmp_path / "feed.xml"
    other.write_bytes(b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><entry/></feed>')
    report = Indexer(Store(settings)).ingest([tmp_path], "jats")
    assert report.papers_added == 1 and report.chunks_added > 20
    (failure,) = report.failed
    assert failure.source.endswith("feed.xml") and failure.error == "UnsupportedFormatError"
    (first,) = Store(settings).papers("jats")
    assert first.title.startswith("Hepato-specific microRNA-122") and first.section == "Abstract"
