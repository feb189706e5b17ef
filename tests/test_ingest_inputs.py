"""Every kind of bad input gets a typed error that names it; good inputs are read fully."""

import json

import pytest
from pypdf import PdfReader, PdfWriter

from rag.chunk import chunk_paper
from rag.errors import (
    CorruptFileError,
    EmptyInputError,
    InputError,
    RecordError,
    TextEncodingError,
    UnsupportedFormatError,
)
from rag.read import collect_files, read_path
from rag.types import Paper
from tests.conftest import make_pdf, shared


def read_one(path):
    results = list(read_path(path))
    assert len(results) == 1
    return results[0]


def test_pdf_text_layer_and_metadata(tmp_path):
    path = tmp_path / "paper.pdf"
    path.write_bytes(
        make_pdf(["Vitamin D and bone health.", "We found higher BMD. doi 10.1234/abc.5678"], title="A PDF study")
    )
    paper = read_one(path)
    assert isinstance(paper, Paper)
    assert paper.title == "A PDF study"
    assert "higher BMD" in paper.text
    assert paper.authors == ["Ada Lovelace", "Alan Turing"]  # page 1 names none: the file's metadata stands in
    assert paper.year is None  # the file's creation date (2019) is not the paper's year
    assert paper.doi == "10.1234/abc.5678"
    assert paper.doc_id.startswith("file:paper-")


def test_corrupt_pdf(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> garbage \x00\xff")
    err = read_one(path)
    assert isinstance(err, (CorruptFileError, EmptyInputError))
    assert str(path) in str(err)


def test_not_a_pdf_at_all(tmp_path):
    path = tmp_path / "fake.pdf"
    path.write_bytes(b"hello, I am text pretending")
    err = read_one(path)
    assert isinstance(err, CorruptFileError) and "no %PDF header" in err.reason


def test_encrypted_pdf(tmp_path):
    plain = tmp_path / "plain.pdf"
    plain.write_bytes(make_pdf(["Secret findings about calcium."]))
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="RC4-128")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as f:
        writer.write(f)
    err = read_one(locked)
    assert isinstance(err, CorruptFileError) and "encrypted" in err.reason


def test_pdf_without_text_layer(tmp_path):
    path = tmp_path / "scan.pdf"
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    with path.open("wb") as f:
        writer.write(f)
    err = read_one(path)
    assert isinstance(err, EmptyInputError) and "no text layer" in err.reason


@pytest.mark.parametrize("content", [b"", b"   \n\n"])
def test_empty_text_file(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    assert isinstance(read_one(path), EmptyInputError)


def test_binary_file_with_text_suffix(tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    err = read_one(path)
    assert isinstance(err, CorruptFileError) and "binary" in err.reason


def test_wrong_encoding(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Über die Knochendichte bei älteren Patienten.".encode("latin-1"))
    err = read_one(path)
    assert isinstance(err, TextEncodingError)
    assert "not valid utf-8" in err.reason and "offset 0" in err.reason


def test_utf16_with_bom_is_read(tmp_path):
    path = tmp_path / "u16.txt"
    path.write_bytes("Bone density study\nVitamin D raised BMD.".encode("utf-16"))
    paper = read_one(path)
    assert isinstance(paper, Paper) and paper.title == "Bone density study"


def test_invalid_json_lines_are_reported_and_the_rest_read(tmp_path):
    path = tmp_path / "corpus.jsonl"
    good = {"doc_id": "x:1", "title": "Good", "abstract": "Vitamin D helps."}
    path.write_text(
        json.dumps(good)
        + "\n{not json\n"
        + json.dumps({"title": "no id", "abstract": "x"})
        + "\n[1, 2]\n"
        + json.dumps({"doc_id": "x:2", "title": "Empty"})
        + "\n"
        + json.dumps({"doc_id": "x:3", "text": "Body text."})
        + "\n",
        encoding="utf-8",
    )
    results = list(read_path(path))
    papers = [r for r in results if isinstance(r, Paper)]
    errors = [r for r in results if isinstance(r, InputError)]
    assert [p.doc_id for p in papers] == ["x:1", "x:3"]
    assert [e.source for e in errors] == [f"{path}:2", f"{path}:3", f"{path}:4", f"{path}:5"]
    assert isinstance(errors[0], RecordError) and "invalid JSON" in errors[0].reason
    assert "no `doc_id`" in errors[1].reason
    assert isinstance(errors[3], EmptyInputError)


def test_json_list_and_structured_sections(tmp_path):
    path = tmp_path / "records.json"
    rec = {
        "doc_id": "pubmed:1",
        "title": "",
        "abstract": "ignored when sections exist",
        "year": 2011,
        "meta": {"sections": [{"label": "BACKGROUND", "text": "Why."}, {"label": "UNLABELLED", "text": "What."}]},
    }
    path.write_text(json.dumps([rec]), encoding="utf-8")
    (paper,) = list(read_path(path))
    assert [s.title for s in paper.sections] == ["Background", ""]
    assert paper.year == 2011


def test_markdown_headings_become_sections(tmp_path):
    path = tmp_path / "note.md"
    path.write_text(
        "# My review\n\nIntro text.\n\n## Methods\n\nWe did things.\n\n## Results\n\nIt worked.\n", encoding="utf-8"
    )
    paper = read_one(path)
    assert paper.title == "My review"
    assert [(s.title, s.text) for s in paper.sections] == [
        ("", "Intro text."),
        ("Methods", "We did things."),
        ("Results", "It worked."),
    ]


def test_markdown_acknowledgements_are_kept_but_not_chunked(tmp_path):
    path = tmp_path / "note.md"
    path.write_text("# R\n\n## Results\n\nIt worked.\n\n## Acknowledgements\n\nThanks to Ann.\n", encoding="utf-8")
    paper = read_one(path)
    assert [s.kind for s in paper.sections] == ["body", "declaration"]
    assert [c.text for c in chunk_paper(paper)] == ["It worked."]


def test_collect_files_reports_unsupported_and_missing(tmp_path):
    (tmp_path / "a.txt").write_text("hello there", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("# B\n\ntext", encoding="utf-8")
    (tmp_path / "sub" / "skip.docx").write_bytes(b"PK")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.txt").write_text("hidden", encoding="utf-8")
    files, errors = collect_files([tmp_path, tmp_path / "nope.txt", tmp_path / "sub" / "skip.docx"])
    assert [f.name for f in files] == ["a.txt", "b.md"]
    assert [type(e) for e in errors] == [InputError, UnsupportedFormatError]
    assert "no such file" in errors[0].reason and ".docx" in errors[1].reason


def test_unicode_line_separators_inside_records_do_not_split_them(tmp_path):
    path = tmp_path / "u2028.jsonl"
    rec = {"doc_id": "u:1", "title": "T", "abstract": "First part\u2028second part\x85third."}
    path.write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    (paper,) = list(read_path(path))
    assert isinstance(paper, Paper) and "second part" in paper.text


def test_pdfs_read_in_reading_processes_are_the_papers_read_inline(tmp_path):
    import pickle

    from rag.errors import CorruptFileError
    from rag.read import read_file, read_many

    folder = shared("pdfs/dev", "truth.json").parent
    pdfs = sorted(folder.glob("*.pdf"))[:3]
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    note = tmp_path / "note.txt"
    note.write_text("A note\n\nVitamin D and bones.", encoding="utf-8")
    files = [pdfs[0], note, bad, *pdfs[1:]]
    pooled = list(read_many(files, workers=2))
    assert [path for path, _ in pooled] == files  # in order, whatever finished first
    for path, items in pooled:
        assert [i.model_dump() if hasattr(i, "model_dump") else str(i) for i in items] == [
            i.model_dump() if hasattr(i, "model_dump") else str(i) for i in read_file(path)
        ]
    (failure,) = dict(pooled)[bad]
    assert isinstance(failure, CorruptFileError) and failure.source == str(bad)  # typed errors survive the trip
    assert pickle.loads(pickle.dumps(failure)).reason == failure.reason
