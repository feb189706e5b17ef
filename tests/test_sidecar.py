"""Sidecar metadata: BibTeX, CSL-JSON and a Zotero library, matched to papers and applied over the PDF's guesses."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.errors import CorruptFileError, EmptyInputError, InputError, RecordError, TextEncodingError
from rag.sidecar import (
    SidecarRecord,
    apply,
    bibtex_names,
    latex_to_text,
    match,
    normalize_doi,
    normalize_title,
    read_bibtex,
    read_csl_json,
    read_sidecar,
    zotero_library,
)
from rag.types import Paper, PaperSection

BIB = r"""% Exported by hand. Text outside entries is a comment.
@string{nat = "Nature"}
@preamble{"\newcommand{\noop}[1]{}"}
@comment{Not an entry: @article{ghost, title = {Ghost}}}

@article{mueller2020,
  title = {{\"U}ber die {DNA}-Reparatur in {E}scherichia coli},
  author = {M{\"u}ller, J{\"u}rgen and Garc\'{\i}a, Jos\'e and {World Health Organization}},
  journal = nat,
  year = 2020,
  doi = {https://doi.org/10.1000/ABC.123},
  file = {Full Text PDF:papers/mueller2020.pdf:application/pdf}
}

@article{broken,
  title = {An unclosed title,
  year = 2019

@misc{onlytitle,
  title = "Only a Title: {RNA} -- a \emph{primer} \& more"
}
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def paper(**fields: object) -> Paper:
    base: dict[str, object] = {"doc_id": "file:x-1", "sections": [PaperSection(text="Body text.")]}
    return Paper.model_validate(base | fields)


@pytest.fixture
def bib(tmp_path: Path) -> Path:
    path = tmp_path / "library.bib"
    path.write_text(BIB, encoding="utf-8")
    return path


# ---------------------------------------------------------------- BibTeX


def test_bibtex_reads_entries_skips_the_malformed_one_and_warns(bib: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rag.sidecar"):
        records = read_bibtex(bib)

    assert [r.source for r in records] == [
        f"library.bib:{line_of(BIB, '@article{mueller2020')}",
        f"library.bib:{line_of(BIB, '@misc{onlytitle')}",
    ]
    first, only_title = records
    assert first.title == "Über die DNA-Reparatur in Escherichia coli"
    assert first.authors == ["Jürgen Müller", "José García", "World Health Organization"]
    assert first.year == 2020
    assert first.doi == "10.1000/ABC.123"
    assert first.files == [bib.parent / "papers" / "mueller2020.pdf"]

    assert only_title.title == "Only a Title: RNA – a primer & more"
    assert (only_title.authors, only_title.year, only_title.doi, only_title.files) == ([], None, None, [])

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"library.bib:{line_of(BIB, '@article{broken')}" in warnings[0]
    assert "malformed" in warnings[0]


def test_bibtex_syntax_variants(tmp_path: Path) -> None:
    text = r"""@STRING(jour = {Journal of } # "Things")
@InProceedings(paren2018,
  title = "Quoted {\"{o}}ne with {Nested {Braces}}" # { and more},
  author = "de la Fontaine, Jean and Smith, Jr., John and Alan Turing and others",
  date = {2018-05-04},
  journal = jour,
  url = {https://dx.doi.org/10.9999/from.url},
  pdf = {/abs/path/paren.pdf},
)
@book{nofields}
@article{keyonly, title = {\v{S}koda and \c{c}a \ss\ \o{}re}, file = {a.pdf;b/c.pdf}, year = {c. 1999a}}
"""
    path = tmp_path / "variants.bib"
    path.write_text(text, encoding="utf-8")

    paren, nofields, keyonly = read_bibtex(path)

    assert paren.title == "Quoted öne with Nested Braces and more"
    assert paren.authors == ["Jean de la Fontaine", "John Smith Jr.", "Alan Turing"]
    assert paren.year == 2018
    assert paren.doi == "10.9999/from.url"
    assert paren.files == [Path("/abs/path/paren.pdf")]
    assert paren.source == "variants.bib:2"
    assert nofields == SidecarRecord(source="variants.bib:10")
    assert keyonly.title == "Škoda and ça ß øre"
    assert keyonly.files == [tmp_path / "a.pdf", tmp_path / "b" / "c.pdf"]
    assert keyonly.year == 1999


def test_latex_and_names_helpers() -> None:
    assert latex_to_text(r"Schr\"odinger's {\'E}quation \`a la \^{o} \~n \H{o} \u{g} \'{\i}") == (
        "Schrödinger's Équation à la ô ñ ő ğ í"
    )
    assert latex_to_text(r"50\% of \textbf{p}~values --- \LaTeX{} \$5") == "50% of p values — LaTeX $5"
    assert bibtex_names(r"{Barnes and Noble} and Lovelace, Ada") == ["Barnes and Noble", "Ada Lovelace"]
    assert bibtex_names("") == []


def test_bibtex_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.bib"
    with pytest.raises(InputError) as err:
        read_bibtex(missing)
    assert type(err.value) is InputError
    assert (err.value.source, err.value.reason) == (str(missing), "no such file")

    empty = tmp_path / "empty.bib"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(EmptyInputError) as empty_err:
        read_bibtex(empty)
    assert empty_err.value.source == str(empty)

    garbage = tmp_path / "garbage.bib"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary")
    with pytest.raises(TextEncodingError) as enc_err:
        read_bibtex(garbage)
    assert enc_err.value.source == str(garbage)
    assert "UTF-8" in enc_err.value.reason

    prose = tmp_path / "prose.bib"
    prose.write_text("just some notes, mail me at a@b.org\n@article{bad title = x}\n", encoding="utf-8")
    with pytest.raises(RecordError) as rec_err:
        read_bibtex(prose)
    assert (rec_err.value.source, rec_err.value.reason) == (str(prose), "no BibTeX entry could be read")

    with pytest.raises(InputError) as dir_err:
        read_bibtex(tmp_path)
    assert dir_err.value.source == str(tmp_path)
    assert "cannot be read" in dir_err.value.reason


# ---------------------------------------------------------------- CSL-JSON


def test_csl_json_items(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    items = [
        {
            "id": "smith2021",
            "type": "article-journal",
            "title": "Deep <i>learning</i> for proteins",
            "author": [
                {"family": "Smith", "given": "Ann"},
                {"literal": "The Protein Consortium"},
                {"family": "Beethoven", "given": "Ludwig", "non-dropping-particle": "van"},
            ],
            "issued": {"date-parts": [[2021, 3, 4]]},
            "DOI": "doi:10.5555/XYZ",
            "URL": "https://example.org/x",
        },
        {"id": "b", "title": "From a URL", "issued": {"raw": "circa 1999"}, "URL": "https://doi.org/10.1/url"},
        "not an object",
        {"title": 42},
    ]
    path = tmp_path / "refs.json"
    path.write_text(json.dumps(items), encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="rag.sidecar"):
        smith, from_url = read_csl_json(path)

    assert smith == SidecarRecord(
        title="Deep learning for proteins",
        authors=["Ann Smith", "The Protein Consortium", "Ludwig van Beethoven"],
        year=2021,
        doi="10.5555/XYZ",
        source="refs.json#1",
    )
    assert (from_url.title, from_url.year, from_url.doi, from_url.source) == (
        "From a URL",
        1999,
        "10.1/url",
        "refs.json#2",
    )
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2
    assert "refs.json#3" in warned[0]
    assert "refs.json#4" in warned[1]


def test_csl_json_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"title": "x",', encoding="utf-8")
    with pytest.raises(RecordError) as err:
        read_csl_json(bad)
    assert err.value.source == str(bad)
    assert err.value.reason.startswith("invalid JSON at line 1")

    obj = tmp_path / "obj.json"
    obj.write_text('{"title": "x"}', encoding="utf-8")
    with pytest.raises(RecordError) as obj_err:
        read_csl_json(obj)
    assert obj_err.value.reason == "expected a CSL-JSON list of items"

    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(RecordError) as junk_err:
        read_csl_json(junk)
    assert junk_err.value.reason == "no CSL-JSON item could be read"

    with pytest.raises(InputError) as missing:
        read_csl_json(tmp_path / "nope.json")
    assert missing.value.reason == "no such file"


# ---------------------------------------------------------------- Zotero

SCHEMA = """
CREATE TABLE itemTypes (itemTypeID INTEGER PRIMARY KEY, typeName TEXT);
CREATE TABLE items (itemID INTEGER PRIMARY KEY, key TEXT, itemTypeID INT);
CREATE TABLE fields (fieldID INTEGER PRIMARY KEY, fieldName TEXT);
CREATE TABLE itemDataValues (valueID INTEGER PRIMARY KEY, value);
CREATE TABLE itemData (itemID INT, fieldID INT, valueID INT);
CREATE TABLE creators (creatorID INTEGER PRIMARY KEY, firstName TEXT, lastName TEXT);
CREATE TABLE itemCreators (itemID INT, creatorID INT, orderIndex INT);
CREATE TABLE itemAttachments (itemID INTEGER PRIMARY KEY, parentItemID INT, contentType TEXT, path TEXT);
CREATE TABLE deletedItems (itemID INTEGER PRIMARY KEY);
INSERT INTO itemTypes VALUES (1, 'attachment'), (2, 'note'), (3, 'journalArticle'), (4, 'book');
INSERT INTO fields VALUES (1, 'title'), (2, 'DOI'), (3, 'date'), (4, 'extra'), (5, 'publicationTitle');
"""


def add_item(conn: sqlite3.Connection, item_id: int, key: str, type_id: int, **fields: str) -> None:
    conn.execute("INSERT INTO items VALUES (?, ?, ?)", (item_id, key, type_id))
    for name, value in fields.items():
        (field_id,) = conn.execute("SELECT fieldID FROM fields WHERE fieldName = ?", (name,)).fetchone()
        value_id = conn.execute("INSERT INTO itemDataValues (value) VALUES (?)", (value,)).lastrowid
        conn.execute("INSERT INTO itemData VALUES (?, ?, ?)", (item_id, field_id, value_id))


def add_creator(conn: sqlite3.Connection, item_id: int, first: str, last: str, order: int) -> None:
    creator_id = conn.execute("INSERT INTO creators (firstName, lastName) VALUES (?, ?)", (first, last)).lastrowid
    conn.execute("INSERT INTO itemCreators VALUES (?, ?, ?)", (item_id, creator_id, order))


def add_attachment(conn: sqlite3.Connection, item_id: int, key: str, parent: int, kind: str, path: str) -> None:
    add_item(conn, item_id, key, 1)
    conn.execute("INSERT INTO itemAttachments VALUES (?, ?, ?, ?)", (item_id, parent, kind, path))


@pytest.fixture
def zotero(tmp_path: Path) -> Path:
    """A tiny stand-in for a Zotero data folder: `zotero.sqlite` with the real table names, and `storage/`."""
    folder = tmp_path / "Zotero"
    (folder / "storage" / "PDFKEY01").mkdir(parents=True)
    (folder / "storage" / "PDFKEY01" / "paper.pdf").write_bytes(b"%PDF-1.4 stand-in")
    conn = sqlite3.connect(folder / "zotero.sqlite")
    conn.executescript(SCHEMA)
    add_item(
        conn,
        1,
        "ART12345",
        3,
        title="Sleep and  memory: a review",
        DOI="10.1234/SLEEP.2019",
        date="2019-03-00 March 2019",
    )
    add_creator(conn, 1, "Ann", "Lee", 1)  # stored out of order: orderIndex decides
    add_creator(conn, 1, "Bob", "Kim", 0)
    add_attachment(conn, 2, "PDFKEY01", 1, "application/pdf", "storage:paper.pdf")
    add_attachment(conn, 3, "HTMLKEY1", 1, "text/html", "storage:snapshot.html")
    add_item(conn, 4, "BOOK0001", 4, title="A Book", date="2001", extra="Citation Key: who2001\nDOI: 10.5555/book.1")
    add_creator(conn, 4, "", "World Health Organization", 0)
    add_attachment(conn, 5, "PDFDEL01", 4, "application/pdf", "storage:old.pdf")
    add_attachment(conn, 6, "LINKED01", 4, "application/pdf", str(tmp_path / "elsewhere" / "book.pdf"))
    add_item(conn, 7, "DELETED1", 3, title="Gone")
    add_item(conn, 8, "NOTE0001", 2, title="A note")
    conn.execute("INSERT INTO deletedItems VALUES (7), (5)")
    conn.commit()
    conn.close()
    return folder


def test_zotero_library_reads_items_creators_and_pdfs(zotero: Path) -> None:
    article, book = zotero_library(zotero)

    assert article == SidecarRecord(
        title="Sleep and memory: a review",
        authors=["Bob Kim", "Ann Lee"],
        year=2019,
        doi="10.1234/SLEEP.2019",
        files=[zotero / "storage" / "PDFKEY01" / "paper.pdf"],
        source="zotero:ART12345",
    )
    assert article.files[0].is_file()
    assert book.source == "zotero:BOOK0001"
    assert (book.title, book.year, book.doi) == ("A Book", 2001, "10.5555/book.1")
    assert book.authors == ["World Health Organization"]
    assert book.files == [zotero.parent / "elsewhere" / "book.pdf"]
    assert read_sidecar(zotero) == [article, book]
    assert read_sidecar(zotero / "zotero.sqlite") == [article, book]


def test_zotero_library_copies_a_locked_database_and_its_wal(zotero: Path) -> None:
    db = zotero / "zotero.sqlite"
    writer = sqlite3.connect(db)
    try:  # what a running Zotero does: exclusive lock, recent writes still in the -wal file
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("PRAGMA locking_mode=EXCLUSIVE")
        add_item(writer, 9, "NEWITEM1", 3, title="Written while Zotero runs", date="2024")
        writer.commit()
        assert db.with_name("zotero.sqlite-wal").stat().st_size > 0
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute("SELECT count(*) FROM items").fetchone()

        records = zotero_library(zotero)
    finally:
        writer.close()

    assert [r.source for r in records] == ["zotero:ART12345", "zotero:BOOK0001", "zotero:NEWITEM1"]
    assert (records[2].title, records[2].year) == ("Written while Zotero runs", 2024)


def test_zotero_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError) as missing:
        zotero_library(tmp_path / "nowhere")
    assert (missing.value.source, missing.value.reason) == (str(tmp_path / "nowhere"), "no such folder")

    with pytest.raises(InputError) as not_zotero:
        zotero_library(tmp_path)
    assert not_zotero.value.source == str(tmp_path)
    assert "zotero.sqlite" in not_zotero.value.reason

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "zotero.sqlite").write_bytes(b"this is not a database \x00\x01\x02" * 200)
    with pytest.raises(CorruptFileError) as bad:
        zotero_library(corrupt)
    assert bad.value.source == str(corrupt / "zotero.sqlite")
    assert "corrupt" in bad.value.reason

    other = tmp_path / "other"
    other.mkdir()
    with sqlite3.connect(other / "zotero.sqlite") as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    conn.close()
    with pytest.raises(InputError) as wrong:
        zotero_library(other)
    assert wrong.value.reason.startswith("not a Zotero database (no such table")


# ---------------------------------------------------------------- matching and applying


@pytest.fixture
def records(bib: Path) -> Iterator[list[SidecarRecord]]:
    yield [
        *read_bibtex(bib),
        SidecarRecord(title="Other", doi="10.7/OTHER", files=[Path("/lib/x/Full Text.pdf")], source="z:1"),
        SidecarRecord(title="Another", files=[Path("/lib/y/Full Text.pdf")], source="z:2"),
    ]


def test_normalisers() -> None:
    assert normalize_doi(" https://doi.org/10.1000/ABC.123 ") == "10.1000/abc.123"
    assert normalize_doi("DOI: 10.1/X") == "10.1/x"
    assert normalize_doi("") is None
    assert normalize_title("  Über-die   DNA: Reparatur!? ") == "über die dna reparatur"


def test_match_by_doi_first(records: list[SidecarRecord], bib: Path) -> None:
    pdf = str(bib.parent / "papers" / "mueller2020.pdf")
    assert match(paper(doi="HTTPS://DOI.ORG/10.1000/abc.123"), records) is records[0]
    # the DOI wins over the file and the title
    assert match(paper(doi="10.7/other", source=pdf, title="Only a title: RNA"), records) is records[2]


def test_match_by_file(records: list[SidecarRecord], bib: Path) -> None:
    roundabout = bib.parent / "papers" / ".." / "papers" / "mueller2020.pdf"
    assert match(paper(source=str(roundabout)), records) is records[0]
    assert match(paper(source="/somewhere/else/mueller2020.pdf"), records) is records[0]
    assert match(paper(source=f"{roundabout}:3"), records) is records[0]
    # a name shared by two records proves nothing; nothing else matches
    assert match(paper(source="/downloads/Full Text.pdf"), records) is None


def test_match_by_title_exactly(records: list[SidecarRecord]) -> None:
    assert match(paper(title="ONLY a title: RNA -- a Primer & more!"), records) is records[1]
    assert match(paper(title="Only a title: RNA – a primer"), records) is None
    assert match(paper(title=""), records) is None
    assert match(paper(title="Sleep", doi="10.1/unknown", source="/x/unknown.pdf"), records) is None


def test_apply_takes_what_the_record_has(records: list[SidecarRecord]) -> None:
    guessed = paper(title="Uber die DNA", authors=["J. Muller"], year=2021, doi=None, meta={"pages": 9})

    fixed = apply(guessed, records[0])

    assert fixed.title == "Über die DNA-Reparatur in Escherichia coli"
    assert fixed.authors == ["Jürgen Müller", "José García", "World Health Organization"]
    assert (fixed.year, fixed.doi) == (2020, "10.1000/ABC.123")
    assert fixed.meta == {"pages": 9, "metadata_from": records[0].source}
    assert fixed.sections == guessed.sections
    assert (guessed.title, guessed.meta) == ("Uber die DNA", {"pages": 9})  # the original is untouched

    partial = apply(guessed, records[1])
    assert partial.title == "Only a Title: RNA – a primer & more"
    assert (partial.authors, partial.year, partial.doi) == (["J. Muller"], 2021, None)
    assert partial.meta["metadata_from"] == records[1].source


def test_read_sidecar_picks_the_reader(bib: Path, tmp_path: Path) -> None:
    assert read_sidecar(bib) == read_bibtex(bib)
    csl = tmp_path / "x.json"
    csl.write_text('[{"title": "T"}]', encoding="utf-8")
    assert read_sidecar(csl) == [SidecarRecord(title="T", source="x.json#1")]
    other = tmp_path / "notes.txt"
    other.write_text("x", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_sidecar(other)
    assert err.value.reason.startswith("not a metadata file")
