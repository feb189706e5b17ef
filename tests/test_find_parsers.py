"""The literature connectors' parsers against real recorded responses (`shared/data/api`), and the
requests each connector builds, through a tiny :class:`rag.find.base.Fetch` that replays recordings.

Every expected value below was read from the recordings themselves. The recordings hold no real
retraction (see the folder's SOURCES.md, "Gaps"), so retraction parsing is tested on a real recording with
only the relevant field changed in the test, as each such test says.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable

import pytest

from rag.errors import SourceResponseError
from rag.find import arxiv, crossref, europepmc, openalex, pubmed
from rag.find.base import Params, Record
from rag.find.text import merge_notices
from rag.lang.pubtypes import design_label
from rag.settings import FindSettings
from rag.types import Notice
from tests.conftest import shared


def recording(name: str) -> bytes:
    return shared("api", name).read_bytes()


def by_key(records: list[Record]) -> dict[str, Record]:
    return {r.key: r for r in records}


def titles(record: Record) -> list[str]:
    return [s.title for s in record.abstract]


# ---------------------------------------------------------------------------------------------- PubMed

STRUCTURED = "pubmed/efetch_pubmed_28775130_structured_abstract.xml"
TWO_ABSTRACTS = "pubmed/efetch_pubmed_12091962_9997_abstract.xml"
WITH_MESH = "pubmed/efetch_pubmed_11748933_11700088.xml"


def test_pubmed_structured_abstract_has_one_section_per_label():
    (r,) = pubmed.parse_efetch(recording(STRUCTURED))
    assert r.key == "pubmed:28775130" and r.pmid == "28775130"
    assert r.title == "Occupational pesticide exposure and subclinical hypothyroidism among male pesticide applicators."
    assert titles(r) == ["Objectives", "Methods", "Results", "Conclusions"]
    assert r.abstract[0].text.startswith("Animal studies suggest that exposure to pesticides")
    assert "(0.4-<4.5 mIU/L)" in r.abstract[1].text  # <u>&lt;</u> flattened, the entity decoded
    assert "(ORQ3=4.15, 95% CI 1.56 to 11.01" in r.abstract[2].text  # OR<sub>Q3</sub>
    assert (r.doi, r.pmcid, r.year) == ("10.1136/oemed-2017-104431", "PMC5771820", 2018)
    assert r.journal == "Occupational and environmental medicine"
    assert len(r.authors) == 12 and r.authors[:2] == ["Catherine C Lerro", "Laura E Beane Freeman"]
    assert r.pub_types == ["Journal Article"] and r.mesh == []  # "In-Data-Review": not indexed yet
    assert r.notices == [] and not r.retracted  # its CommentsCorrections are all "Cites"


def test_pubmed_articles_with_and_without_abstracts():
    records = pubmed.parse_efetch(recording(TWO_ABSTRACTS)) + pubmed.parse_efetch(recording(WITH_MESH))
    assert [r.pmid for r in records] == ["12091962", "9997", "11748933", "11700088"]
    no_abstract, heme, cryo, mri = records
    assert no_abstract.title == "The treatment of AIDS behind the walls of correctional facilities."
    assert no_abstract.abstract == [] and no_abstract.doi is None
    assert (no_abstract.authors, no_abstract.year) == (["J Michael Olivero"], 1990)
    assert no_abstract.pub_types == ["Journal Article", "Review"] and design_label(no_abstract.pub_types) == "Review"
    assert len(no_abstract.mesh) == 19 and "Prisoners" in no_abstract.mesh
    assert titles(heme) == ["Abstract"] and heme.abstract[0].text.startswith("Electron paramagnetic resonance")
    assert (heme.doi, heme.year, heme.journal) == (
        "10.1016/0005-2795(76)90109-4",
        1976,
        "Biochimica et biophysica acta",
    )
    assert len(cryo.authors) == 8 and cryo.authors[0] == "A R Taddei" and cryo.doi == "10.1006/cryo.2001.2328"
    assert cryo.pub_types == ["Journal Article", "Research Support, Non-U.S. Gov't"]
    assert "(P < 0.001)" in cryo.abstract[0].text and cryo.year == 2001
    assert mri.title == "Proton MRI of (13)C distribution by J and chemical shift editing."
    assert mri.journal == "Journal of magnetic resonance (San Diego, Calif. : 1997)" and mri.mesh == []


def test_pubmed_esearch_ids():
    biopython = pubmed.parse_esearch(recording("pubmed/esearch_pubmed_biopython.xml"))
    assert len(biopython) == 20 and biopython[:2] == ["41282813", "41148224"] and biopython[-1] == "37810457"
    assert len(pubmed.parse_esearch(recording("pubmed/esearch_pubmed_cancer_usehistory.xml"))) == 100
    assert pubmed.parse_esearch(recording("pubmed/esearch_pubmed_pnas_retstart.xml"))[0] == "11121077"


def _with_notices(article_xml: bytes, pub_type: str | None, refs: str) -> bytes:
    """The real 9997 record with a publication type and CommentsCorrections added (no real retraction
    was recorded; everything else stays as PubMed sent it)."""
    text = article_xml.decode()
    if pub_type:
        text = text.replace(
            '<PublicationType UI="D016428">Journal Article</PublicationType></PublicationTypeList></Article>'
            "<MedlineJournalInfo><Country>Netherlands",
            f'<PublicationType UI="D016428">Journal Article</PublicationType><PublicationType>{pub_type}'
            "</PublicationType></PublicationTypeList></Article><MedlineJournalInfo><Country>Netherlands",
        )
    text = text.replace("<ChemicalList>", f"<CommentsCorrectionsList>{refs}</CommentsCorrectionsList><ChemicalList>")
    return text.encode()


def test_pubmed_retraction_from_publication_type_and_retraction_in():
    refs = (
        '<CommentsCorrections RefType="RetractionIn"><RefSource>Biochim Biophys Acta. 1977 Jan;447(1):1. '
        'doi: 10.1016/0005-2787(77)90001-X.</RefSource><PMID Version="1">123456</PMID></CommentsCorrections>'
    )
    records = pubmed.parse_efetch(_with_notices(recording(TWO_ABSTRACTS), "Retracted Publication", refs))
    heme = by_key(records)["pubmed:9997"]
    assert heme.retracted and "Retracted Publication" in heme.pub_types
    assert heme.notices == [
        Notice(
            kind="retraction", label="Retraction in PMID 123456", doi="10.1016/0005-2787(77)90001-x", source="pubmed"
        )
    ]
    assert not by_key(records)["pubmed:12091962"].retracted
    (only_type,) = [
        r
        for r in pubmed.parse_efetch(_with_notices(recording(TWO_ABSTRACTS), "Retracted Publication", ""))
        if r.pmid == "9997"
    ]
    assert only_type.retracted and only_type.notices == [
        Notice(kind="retraction", label="Retracted Publication", source="pubmed")
    ]


def test_pubmed_erratum_and_expression_of_concern_are_notices_not_retractions():
    refs = (
        '<CommentsCorrections RefType="ErratumIn"><RefSource>Biochim Biophys Acta. 1977;448:2</RefSource>'
        '<PMID Version="1">111</PMID></CommentsCorrections>'
        '<CommentsCorrections RefType="ExpressionOfConcernIn"><RefSource>Biochim Biophys Acta. 1978;500:3'
        "</RefSource></CommentsCorrections>"
        '<CommentsCorrections RefType="CommentIn"><RefSource>x</RefSource><PMID Version="1">222</PMID></CommentsCorrections>'
    )
    (heme,) = [r for r in pubmed.parse_efetch(_with_notices(recording(TWO_ABSTRACTS), None, refs)) if r.pmid == "9997"]
    assert not heme.retracted
    assert [(n.kind, n.label) for n in heme.notices] == [
        ("correction", "Erratum in PMID 111"),
        ("expression_of_concern", "Expression of concern in Biochim Biophys Acta. 1978;500:3"),
    ]


def test_pubmed_book_article_and_malformed_bodies():
    book = (
        b"<PubmedArticleSet><PubmedBookArticle><BookDocument><PMID Version='1'>20301295</PMID>"
        b"<ArticleIdList><ArticleId IdType='bookaccession'>NBK1116</ArticleId></ArticleIdList>"
        b"<Book><BookTitle book='gene'>GeneReviews<sup>\xc2\xae</sup></BookTitle><PubDate><Year>1993</Year></PubDate></Book>"
        b"<ArticleTitle>Cystic Fibrosis</ArticleTitle><AuthorList Type='authors'><Author><LastName>Ong</LastName>"
        b"<ForeName>Thida</ForeName></Author></AuthorList><PublicationType UI='D016454'>Review</PublicationType>"
        b"<Abstract><AbstractText Label='CLINICAL CHARACTERISTICS'>Lungs.</AbstractText></Abstract></BookDocument>"
        b"</PubmedBookArticle></PubmedArticleSet>"
    )
    (r,) = pubmed.parse_efetch(book)
    assert (r.key, r.title, r.journal, r.year) == ("pubmed:20301295", "Cystic Fibrosis", "GeneReviews®", 1993)
    assert r.authors == ["Thida Ong"] and r.pub_types == ["Review"] and titles(r) == ["Clinical characteristics"]
    full = recording(STRUCTURED)
    with pytest.raises(SourceResponseError, match="pubmed"):
        pubmed.parse_efetch(full[: len(full) // 2])  # truncated mid-document
    with pytest.raises(SourceResponseError, match="PubmedArticleSet"):
        pubmed.parse_efetch(recording("pubmed/esummary_pubmed_11850928_11482001.xml"))
    with pytest.raises(SourceResponseError, match="Invalid query"):
        pubmed.parse_esearch(b"<eSearchResult><ERROR>Invalid query</ERROR></eSearchResult>")
    assert pubmed.parse_efetch(b"<PubmedArticleSet></PubmedArticleSet>") == []


# ---------------------------------------------------------------------------------------------- Europe PMC

CORE = "europepmc/search_cancer_core.json"
LITE = "europepmc/search_cancer_lite.json"


def test_europepmc_core_search_all_25_records():
    records, cursor = europepmc.parse_page(recording(CORE))
    assert len(records) == 25 and cursor == "AoIIP4ZawSg1MzEyODI1MA=="
    assert len(by_key(records)) == 25 and all(r.year == 2025 and r.pmid for r in records)
    assert sum(bool(r.abstract) for r in records) == 21
    assert not any("<h4>" in s.text or "<sub>" in s.text or "<b>" in s.text for r in records for s in r.abstract)
    first = records[0]
    assert first.key == "europepmc:MED:39709209" and first.doi == "10.1016/s0140-6736(24)02600-x"
    assert (
        first.title
        == "Abscopal response in a patient with fibrolamellar hepatocellular carcinoma following radiotherapy."
    )
    assert first.authors == ["Jonathan D Schoenfeld", "Daphne A Haas-Kogan", "Allison F O'Neill"]
    assert (first.journal, first.pub_types, first.cited_by) == ("Lancet (London, England)", ["Journal Article"], 0)
    assert first.abstract == [] and first.open_access is False and first.pdf_url is None


def test_europepmc_structured_html_abstracts_and_types():
    records = {r.pmid: r for r in europepmc.parse_search(recording(CORE))}
    review = records["39212676"]
    assert review.title == "The Clinical Impact of Time-restricted Eating on Cancer: A Systematic Review."
    assert titles(review) == [
        "Context", "Objective", "Data sources", "Data extraction", "Data analysis", "Conclusions", "Registration"
    ]  # fmt: skip
    assert (review.pmcid, review.cited_by, review.open_access) == ("PMC12166167", 3, True)
    assert review.pdf_url == "https://europepmc.org/articles/PMC12166167?pdf=render"
    assert review.pub_types == ["Systematic Review", "review-article", "Journal Article"]
    assert design_label(review.pub_types) == "Systematic review"
    assert "Hydrogen sulfide (H2S) is of particular interest" in records["40511629"].abstract[0].text
    assert records["40245290"].abstract[2].text.endswith("median overall survival of <1 year.")  # "<1" is no tag
    assert "(at p < .001)" in records["40468710"].abstract[3].text
    assert titles(records["40476859"]) == ["Abstract", "Keywords"]  # "<b>Keywords:</b>" after unlabelled text
    assert titles(records["40516981"]) == ["Abstract"]
    assert titles(records["40437959"])[0] == "Issue addressed"
    erratum = records["39709208"]
    assert erratum.pub_types == ["Published Erratum", "correction"] and design_label(erratum.pub_types) == "Erratum"
    assert erratum.notices == [] and not erratum.retracted  # its "Erratum for" link is the notice's own side
    assert design_label(records["40493882"].pub_types) == "Observational"
    assert design_label(records["40437959"].pub_types) is None  # research-article, Journal Article


def test_europepmc_lite_and_empty_results():
    lite = europepmc.parse_search(recording(LITE))
    assert [r.key for r in lite] == [r.key for r in europepmc.parse_search(recording(CORE))]
    assert lite[0].authors == ["JD Schoenfeld", "DA Haas-Kogan", "AF O'Neill"] and lite[0].journal == "Lancet"
    assert lite[1].pub_types == ["published erratum", "correction"] and design_label(lite[1].pub_types) == "Erratum"
    assert europepmc.parse_page(recording("europepmc/search_no_results.json")) == ([], None)


def test_europepmc_malformed_bodies():
    core = recording(CORE)
    for body in (core[:5000], recording("europepmc/search_cancer_lite.xml"), b'{"version": "6.9"}'):
        with pytest.raises(SourceResponseError, match="europepmc"):
            europepmc.parse_search(body)


def test_europepmc_retraction_from_pub_type_and_comment():
    # No real retraction was recorded: a real core result with only its pubTypeList and
    # commentCorrectionList changed.
    result = copy.deepcopy(json.loads(recording(CORE))["resultList"]["result"][2])
    result["pubTypeList"]["pubType"].append("Retracted Publication")
    result["commentCorrectionList"] = {
        "commentCorrection": [{"id": "40999999", "source": "MED", "reference": "x", "type": "Retraction in"}]
    }
    r = europepmc.parse_result(result)
    assert r is not None and r.retracted
    assert r.notices == [Notice(kind="retraction", label="Retraction in PMID 40999999", source="europepmc")]


def test_markup_helpers():
    assert europepmc.plain_text("H<sub>2</sub>O <i>in vivo</i> &amp; p < 0.05") == "H2O in vivo & p < 0.05"
    sections = europepmc.markup_sections("<b>Background:</b> One. <b>Methods:</b> Two <b>bold</b> word.")
    assert [(s.title, s.text) for s in sections] == [("Background", "One."), ("Methods", "Two bold word.")]
    assert europepmc.markup_sections("") == []


# ---------------------------------------------------------------------------------------------- OpenAlex

PNAS_WORK = "openalex/work_doi_10.1073_pnas.1414271111.json"


def test_openalex_single_works():
    (pnas,) = openalex.parse_works(recording(PNAS_WORK))
    assert (pnas.key, pnas.openalex_id, pnas.doi) == ("openalex:W2109415576", "W2109415576", "10.1073/pnas.1414271111")
    assert pnas.title.startswith("Developing functional musculoskeletal tissues through hypoxia")
    assert (pnas.pmid, pnas.pmcid, pnas.year, pnas.cited_by) == ("25349395", "PMC4234579", 2014, 138)
    assert pnas.journal == "Proceedings of the National Academy of Sciences" and pnas.pub_types == ["article"]
    assert len(pnas.authors) == 5 and pnas.authors[0] == "Eleftherios Makris"
    assert pnas.open_access is True and pnas.pdf_url == "https://europepmc.org/articles/pmc4234579?pdf=render"
    assert pnas.abstract[0].text.startswith("Significance The inadequate mechanical properties of engineered tissues")
    assert not pnas.retracted and pnas.notices == []
    body = recording("openalex/work_doi_10.1016_j.addr.2015.01.008.json")
    (review,) = openalex.parse_works(body)
    assert (review.openalex_id, review.pub_types, review.cited_by, review.pmid) == (
        "W2033425827",
        ["review"],
        750,
        "25666165",
    )
    assert design_label(review.pub_types) == "Review" and review.pmcid is None
    assert review.abstract[0].text.startswith("Pharmacokinetic properties of oligonucleotides are largely driven by")
    index = json.loads(body)["abstract_inverted_index"]
    assert len(review.abstract[0].text.split()) == sum(len(p) for p in index.values()) == 215


def test_openalex_list_and_select_only():
    article, preprint = openalex.parse_works(recording("openalex/works_filter_title_search_chemistry_tools.json"))
    assert article.title == "Augmenting large language models with chemistry tools" and article.year == 2024
    assert article.abstract[0].text.startswith(
        "Large language models (LLMs) have shown"
    )  # heading word "Abstract" dropped
    assert article.pdf_url == "https://www.nature.com/articles/s42256-024-00832-8.pdf" and article.pmid == "38799228"
    assert (preprint.doi, preprint.arxiv_id, preprint.pub_types) == (
        "10.48550/arxiv.2304.05376",
        "2304.05376",
        ["preprint"],
    )
    assert preprint.pdf_url == "http://arxiv.org/pdf/2304.05376" and design_label(preprint.pub_types) == "Preprint"
    (select,) = openalex.parse_works(recording("openalex/work_doi_select_open_access.json"))
    assert (select.key, select.doi, select.open_access, select.title) == (
        "openalex:doi:10.1093/nar/gkw1164",
        "10.1093/nar/gkw1164",
        True,
        "",
    )
    with pytest.raises(SourceResponseError, match="openalex"):
        openalex.parse_works(recording("openalex/work_doi_not_found_404.html"))


def test_openalex_retracted_flag():
    # No recorded work is retracted: the real PNAS work with only is_retracted changed.
    work = json.loads(recording(PNAS_WORK))
    work["is_retracted"] = True
    (r,) = openalex.parse_works(json.dumps(work).encode())
    assert r.retracted and r.notices == [Notice(kind="retraction", label="Retracted", source="openalex")]


def test_openalex_rebuild_abstract():
    assert openalex.rebuild_abstract({"b": [1], "a": [0, 2]}) == "a b a"
    assert openalex.rebuild_abstract(None) == ""


# ---------------------------------------------------------------------------------------------- arXiv

SEARCH_10 = "arxiv/query_search_testing_max10.atom.xml"
ONE_ID = "arxiv/id_list_1605.08386.atom.xml"


def test_arxiv_search_feed():
    records = arxiv.parse_feed(recording(SEARCH_10))
    assert [r.arxiv_id for r in records] == [
        "2202.12139", "2405.13786", "2005.14124", "2204.08348", "2302.03287",
        "1202.4527", "2503.05378", "1205.1866", "2502.07719", "1812.11470",
    ]  # fmt: skip
    first = records[0]
    assert first.title == "Testing Deep Learning Models: A First Comparative Study of Multiple Testing Techniques"
    assert (first.year, first.doi, first.pub_types) == (2022, "10.1109/icstw55395.2022.00035", ["Preprint", "cs.SE"])
    assert first.authors == ["Mohit Kumar Ahuja", "Arnaud Gotlieb", "Helge Spieker"]
    assert first.journal is not None and first.journal.startswith("Artificial Intelligence in Software Testing @ 2022")
    assert records[7].pub_types == ["Preprint", "cs.AR"] and records[6].doi is None and records[6].journal is None
    assert all(r.open_access and (r.pdf_url or "").startswith(f"https://arxiv.org/pdf/{r.arxiv_id}v") for r in records)
    assert not any(r.retracted for r in records) and design_label(first.pub_types) == "Preprint"


def test_arxiv_id_lists_and_error_feed():
    (r,) = arxiv.parse_feed(recording(ONE_ID))
    assert (r.key, r.title, r.year) == ("arxiv:1605.08386", "Heat-bath random walks with Markov bases", 2016)
    assert r.authors == ["Caprice Stanley", "Tobias Windisch"] and r.pub_types == ["Preprint", "math.CO"]
    assert titles(r) == ["Abstract"] and r.abstract[0].text.startswith("Graphs on lattice points are studied")
    assert r.pdf_url == "https://arxiv.org/pdf/1605.08386v1" and r.doi is None
    (proceedings,) = arxiv.parse_feed(recording("arxiv/id_list_0808.05394_1707.08567.atom.xml"))
    assert proceedings.arxiv_id == "1707.08567" and len(proceedings.authors) == 34
    with pytest.raises(SourceResponseError, match="incorrect id format for abc"):
        arxiv.parse_feed(recording("arxiv/id_list_abc_error_400.atom.xml"))
    with pytest.raises(SourceResponseError, match="arxiv"):
        arxiv.parse_feed(recording(SEARCH_10)[:3000])


def test_arxiv_withdrawn_comment():
    # No withdrawn e-print was recorded: the real 1605.08386 entry with only its comment changed.
    body = recording(ONE_ID).replace(
        b"<arxiv:comment>20 pages, 3 figures</arxiv:comment>",
        b"<arxiv:comment>This paper has been withdrawn by the author due to an error in Lemma 2</arxiv:comment>",
    )
    (r,) = arxiv.parse_feed(body)
    assert r.retracted and r.notices == [Notice(kind="withdrawal", label="Withdrawn", source="arxiv")]


def test_arxiv_query_building():
    assert arxiv.build_query("heat bath random walks") == "all:heat AND all:bath AND all:random AND all:walks"
    assert arxiv.build_query('"random walk" markov, bases') == 'all:"random walk" AND all:markov AND all:bases'
    assert arxiv.build_query("ti:markov AND au:stanley") == "ti:markov AND au:stanley"
    assert arxiv.build_query("markov OR gibbs") == "markov OR gibbs"
    assert arxiv.build_query("testing") == "testing"  # one bare word: arXiv searches all fields


# ---------------------------------------------------------------------------------------------- Crossref

PNAS_CROSSREF = "crossref/work_doi_10.1073_pnas.1414271111.json"
PLOS = "crossref/work_doi_10.1371_journal.pone.0033693_updated_by_correction.json"


def test_crossref_updated_by_corrections():
    assert crossref.parse_notices(recording(PNAS_CROSSREF)) == [
        Notice(
            kind="correction", label="Correction", doi="10.1073/pnas.1507001112", date="2015-05-04", source="crossref"
        )
    ]
    (plos_notice,) = crossref.parse_notices(recording(PLOS))
    assert (plos_notice.kind, plos_notice.doi, plos_notice.date) == (
        "correction", "10.1371/annotation/c76da2c1-ccb8-4797-94c1-359d3ceceeda", "2012-05-08"
    )  # fmt: skip


def test_crossref_work_records():
    (pnas,) = crossref.parse_works(recording(PNAS_CROSSREF))
    assert (pnas.key, pnas.year, pnas.cited_by, pnas.pub_types) == (
        "crossref:10.1073/pnas.1414271111",
        2014,
        129,
        ["journal-article"],
    )
    assert (
        pnas.authors[0] == "Eleftherios A. Makris" and pnas.journal == "Proceedings of the National Academy of Sciences"
    )
    assert titles(pnas) == ["Significance"] and pnas.abstract[0].text.startswith("The inadequate mechanical properties")
    assert "<jats:" not in pnas.abstract[0].text and not pnas.retracted and len(pnas.notices) == 1
    (plos,) = crossref.parse_works(recording(PLOS))
    assert (plos.year, plos.journal, plos.cited_by, plos.abstract) == (2012, "PLoS ONE", 72, [])
    (listed,) = crossref.parse_works(recording("crossref/works_query_title_rows1.json"))
    assert listed.doi == "10.1063/1.4938384" and listed.abstract[0].text.startswith("Metal-oxide layers are likely")
    (selected,) = crossref.parse_works(recording("crossref/works_query_title_select_retracted_doi.json"))
    assert (selected.doi, selected.authors, selected.year, selected.notices) == (
        "10.1155/2022/8341966",
        ["Jiaye Han"],
        None,
        [],
    )
    with pytest.raises(SourceResponseError, match="Resource not found"):
        crossref.parse_works(recording("crossref/work_doi_not_found_404.txt"))


def test_crossref_retraction_and_other_update_types():
    # No real retraction was recorded: the real PLOS record with updated-by entries added.
    work = json.loads(recording(PLOS))
    updates = work["message"]["updated-by"]
    for kind in ("retraction", "removal", "expression_of_concern", "erratum", "addendum"):
        updates.append({"DOI": f"10.1371/journal.pone.{kind}", "type": kind, "label": kind.title(), "source": "retraction-watch", "updated": {"date-parts": [[2013, 1, 2]]}})  # fmt: skip
    work["message"]["relation"] = {
        "is-retracted-by": [{"id-type": "doi", "id": "10.1371/journal.pone.retraction", "asserted-by": "subject"}],
        "is-preprint-of": [{"id-type": "doi", "id": "10.1/preprint", "asserted-by": "subject"}],
    }
    (r,) = crossref.parse_works(json.dumps(work).encode())
    assert r.retracted
    assert [(n.kind, n.doi) for n in r.notices] == [
        ("correction", "10.1371/annotation/c76da2c1-ccb8-4797-94c1-359d3ceceeda"),
        ("retraction", "10.1371/journal.pone.retraction"),  # from updated-by; the relation names the same DOI
        ("withdrawal", "10.1371/journal.pone.removal"),
        ("expression_of_concern", "10.1371/journal.pone.expression_of_concern"),
        ("correction", "10.1371/journal.pone.erratum"),
        ("other", "10.1371/journal.pone.addendum"),
    ]
    assert r.notices[1].date == "2013-01-02"


def test_crossref_notice_record_is_typed_by_its_update():
    # A notice carries update-to; the real PNAS record with one added, its own updated-by removed.
    work = json.loads(recording(PNAS_CROSSREF))
    work["message"]["update-to"] = [{"DOI": "10.1/paper", "type": "retraction", "label": "Retraction", "updated": {}}]
    del work["message"]["updated-by"]
    (r,) = crossref.parse_works(json.dumps(work).encode())
    assert r.pub_types == ["journal-article", "retraction"] and design_label(r.pub_types) == "Retraction notice"
    assert not r.retracted and r.notices == []


# ---------------------------------------------------------------------------------------------- quality


def test_design_labels():
    assert design_label(["Journal Article"]) is None
    assert design_label(["research-article", "Journal Article"]) is None
    assert design_label(["article"]) is None and design_label([]) is None
    assert design_label(["Journal Article", "Randomized Controlled Trial", "Meta-Analysis"]) == "Meta-analysis"
    assert design_label(["Randomized Controlled Trial", "Multicenter Study"]) == "RCT"
    assert design_label(["Clinical Trial, Phase III"]) == "Clinical trial"
    assert design_label(["Case Reports", "Review"]) == "Case report"
    assert design_label(["Preprint", "cs.SE"]) == "Preprint" and design_label(["posted-content"]) == "Preprint"
    assert design_label(["Retraction of Publication"]) == "Retraction notice"
    assert design_label(["review-article"]) == "Review" and design_label(["News"]) == "News"


def test_merge_notices():
    a = Notice(kind="retraction", label="Retraction", doi="10.1/R", source="crossref")
    b = Notice(kind="retraction", label="Retracted", doi="10.1/r", date="2020-01-02", source="openalex")
    c = Notice(kind="retraction", label="Retracted Publication", source="pubmed")
    merged = merge_notices([a], [b, c, c])
    assert merged == [a.model_copy(update={"date": "2020-01-02"}), c]


# ---------------------------------------------------------------------------------------------- requests


class Replay:
    """A :class:`rag.find.base.Fetch` that records each request and answers with ``respond(url, params)``."""

    def __init__(self, respond: Callable[[str, dict[str, str | int]], bytes | None]) -> None:
        self.respond = respond
        self.calls: list[tuple[str, dict[str, str | int], bool]] = []

    def get(self, url: str, params: Params | None = None, missing_ok: bool = False) -> bytes | None:
        self.calls.append((url, dict(params or {}), missing_ok))
        return self.respond(url, dict(params or {}))


def _settings(**kw: object) -> FindSettings:
    return FindSettings(**kw)  # type: ignore[arg-type]


def test_pubmed_search_sends_esearch_then_efetch_with_tool_email_and_key():
    esearch, efetch = recording("pubmed/esearch_pubmed_biopython.xml"), recording(WITH_MESH)
    fetch = Replay(lambda url, params: esearch if url.endswith("esearch.fcgi") else efetch)
    conn = pubmed.PubMed(fetch, _settings(email="me@example.org", ncbi_api_key="secret"))
    records = conn.search("biopython", 20, since=2020)
    (search_url, search, _), (fetch_url, fetched, _) = fetch.calls
    assert search_url == "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esearch.fcgi"
    assert search == {
        "db": "pubmed", "term": "biopython", "retmax": 20, "sort": "relevance", "mindate": 2020, "maxdate": 3000,
        "datetype": "pdat", "tool": "rag", "email": "me@example.org", "api_key": "secret",
    }  # fmt: skip
    assert fetch_url.endswith("/efetch.fcgi") and fetched["retmode"] == "xml" and fetched["tool"] == "rag"
    assert fetched["id"] == ",".join(pubmed.parse_esearch(esearch)) and fetched["api_key"] == "secret"
    assert [r.pmid for r in records] == ["11748933", "11700088"]  # what the replayed efetch holds


def test_pubmed_lookup_batches_200_ids_and_omits_unset_credentials():
    fetch = Replay(lambda url, params: b"<PubmedArticleSet></PubmedArticleSet>")
    pubmed.PubMed(fetch, _settings()).lookup([f"pmid:{n}" for n in range(1, 451)] + ["arxiv:1605.08386"])
    assert [len(str(p["id"]).split(",")) for _, p, _ in fetch.calls] == [200, 200, 50]
    assert all("email" not in p and "api_key" not in p and p["tool"] == "rag" for _, p, _ in fetch.calls)


def test_europepmc_search_follows_the_cursor_and_passes_since():
    core, lite = recording(CORE), recording(LITE)
    fetch = Replay(lambda url, params: core if params["cursorMark"] == "*" else lite)
    records = europepmc.EuropePMC(fetch, _settings()).search("cancer", 40, since=2020)
    assert [p["cursorMark"] for _, p, _ in fetch.calls] == ["*", "AoIIP4ZawSg1MzEyODI1MA=="]
    # The second page's next cursor is its own: the end, though fewer than 40 distinct records came.
    url, params, _ = fetch.calls[0]
    assert url == "https://www.ebi.ac.uk/europepmc/webservices/rest/search"
    assert params == {
        "query": "(cancer) AND FIRST_PDATE:[2020-01-01 TO 3000-12-31]", "resultType": "core", "format": "json",
        "pageSize": 40, "cursorMark": "*",
    }  # fmt: skip
    assert len(records) == 40


def test_europepmc_lookup_and_full_text_requests():
    fetch = Replay(lambda url, params: recording("europepmc/search_no_results.json") if "search" in url else None)
    conn = europepmc.EuropePMC(fetch, _settings())
    assert conn.lookup(["pmcid:PMC12166167", "pmid:39709209", "doi:10.1093/NUTRIT/nuae105", "arxiv:1605.08386"]) == []
    (_, params, _), *_ = fetch.calls
    assert params["query"] == 'PMCID:PMC12166167 OR (EXT_ID:39709209 AND SRC:MED) OR DOI:"10.1093/nutrit/nuae105"'
    assert params["pageSize"] == 6
    review = {r.pmid: r for r in europepmc.parse_search(recording(CORE))}["39212676"]
    assert conn.full_text(review) is None  # the replay answers 404
    assert fetch.calls[-1] == ("https://www.ebi.ac.uk/europepmc/webservices/rest/PMC12166167/fullTextXML", {}, True)
    closed = review.model_copy(update={"open_access": False})
    calls = len(fetch.calls)
    assert conn.full_text(closed) is None and len(fetch.calls) == calls


def test_europepmc_full_text_reads_jats():
    pytest.importorskip("rag.jats", reason="rag/jats.py (read_jats) is not written yet")
    body = recording("europepmc/fullTextXML_PMC3258128.xml")
    fetch = Replay(lambda url, params: body)
    record = Record(source="europepmc", key="europepmc:PMC:PMC3258128", pmcid="PMC3258128", open_access=True)
    paper = europepmc.EuropePMC(fetch, _settings()).full_text(record)
    assert paper is not None and paper.sections and paper.doc_id == "europepmc:PMC:PMC3258128"


def test_openalex_requests():
    listed = recording("openalex/works_filter_title_search_chemistry_tools.json")
    fetch = Replay(lambda url, params: listed)
    records = openalex.OpenAlex(fetch, _settings(email="me@example.org")).search("chemistry tools", 5, since=2020)
    assert len(records) == 2 and len(fetch.calls) == 1  # a short page is the last one
    assert fetch.calls[0] == (
        "https://api.openalex.org/works",
        {"search": "chemistry tools", "per-page": 5, "page": 1, "mailto": "me@example.org", "filter": "from_publication_date:2020-01-01"},
        False,
    )  # fmt: skip
    # Full pages (the recording's results repeated) go on to the next page.
    full = json.loads(listed)
    full["results"] = full["results"] * 100
    pages = {1: json.dumps(full).encode(), 2: json.dumps(full).encode(), 3: listed}
    fetch = Replay(lambda url, params: pages[int(params["page"])])
    assert len(openalex.OpenAlex(fetch, _settings()).search("x", 402)) == 402
    assert [(p["page"], p["per-page"]) for _, p, _ in fetch.calls] == [(1, 200), (2, 200), (3, 200)]


def test_openalex_lookup_paths():
    work = recording(PNAS_WORK)
    fetch = Replay(lambda url, params: work if "doi.org/10.1073" in url else None)
    ids = ["doi:10.1073/PNAS.1414271111", "pmid:25349395", "pmcid:PMC4234579", "arxiv:2304.05376", "openalex:W1"]
    (record,) = openalex.OpenAlex(fetch, _settings()).lookup(ids)
    assert record.openalex_id == "W2109415576"
    base = "https://api.openalex.org/works/"
    assert [(url.removeprefix(base), missing) for url, _, missing in fetch.calls] == [
        ("https://doi.org/10.1073%2Fpnas.1414271111", True),
        ("pmid:25349395", True),
        ("pmcid:PMC4234579", True),
        ("https://doi.org/10.48550%2Farxiv.2304.05376", True),
        ("W1", True),
    ]


def test_arxiv_requests():
    feed = recording(SEARCH_10)
    fetch = Replay(lambda url, params: feed)
    conn = arxiv.ArXiv(fetch, _settings())
    records = conn.search("software testing", 5, since=2015)
    assert fetch.calls[0] == (
        "https://export.arxiv.org/api/query",
        {
            "search_query": "(all:software AND all:testing) AND submittedDate:[201501010000 TO 999912312359]",
            "start": 0, "max_results": 5, "sortBy": "relevance", "sortOrder": "descending",
        },
        False,
    )  # fmt: skip
    assert [r.arxiv_id for r in records] == ["2202.12139", "2405.13786", "2005.14124", "2204.08348", "2302.03287"]
    assert all(r.year and r.year >= 2015 for r in records)
    conn.lookup(["arxiv:1605.08386v1", "arxiv:1707.08567", "doi:10.1/x"])
    assert fetch.calls[-1][1] == {"id_list": "1605.08386,1707.08567", "start": 0, "max_results": 2}


def test_arxiv_full_text_reads_the_pdf_and_removes_the_temporary_file(tmp_path, monkeypatch):
    from tests.conftest import make_pdf

    pdf = make_pdf(
        [
            "Heat-bath random walks with Markov bases.",
            "Graphs on lattice points are studied whose edges come from moves.",
        ]
    )
    (record,) = arxiv.parse_feed(recording(ONE_ID))
    fetch = Replay(lambda url, params: pdf)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    paper = arxiv.ArXiv(fetch, _settings()).full_text(record)
    assert fetch.calls == [("https://arxiv.org/pdf/1605.08386v1", {}, True)]
    assert (
        paper is not None
        and paper.doc_id == "arxiv:1605.08386"
        and paper.source == "https://arxiv.org/pdf/1605.08386v1"
    )
    assert "lattice points" in paper.text and list(tmp_path.iterdir()) == []


def test_crossref_requests():
    body = recording(PNAS_CROSSREF)
    fetch = Replay(lambda url, params: body if "pnas" in url else None)
    conn = crossref.Crossref(fetch, _settings(email="me@example.org"))
    assert conn.search("anything", 10) == [] and fetch.calls == []
    assert [n.doi for n in conn.notices("https://doi.org/10.1073/PNAS.1414271111")] == ["10.1073/pnas.1507001112"]
    assert fetch.calls[-1] == (
        "https://api.crossref.org/works/10.1073%2Fpnas.1414271111",
        {"mailto": "me@example.org"},
        True,
    )
    assert conn.notices("10.48550/arxiv.2312.07559") == []  # Crossref's 404
    (record,) = conn.lookup(["doi:10.1073/pnas.1414271111", "pmid:1", "doi:10.1/missing"])
    assert record.cited_by == 129 and len(fetch.calls) == 4
