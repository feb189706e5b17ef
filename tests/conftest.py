"""Shared fixtures: isolated settings, slices of the shared data, and input-file makers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.datasets import find_local
from rag.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def shared(name: str, filename: str = "corpus.jsonl") -> Path:
    path = find_local(name, filename, data_dir=Settings().data_dir)
    if path is None:
        pytest.skip(
            f"shared data set {name}/{filename} not found (set RAG_DATA_DIR or keep ../shared/data beside the repo)"
        )
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def head_lines(path: Path, n: int) -> list[dict]:
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line))
            if len(out) == n:
                break
    return out


@pytest.fixture
def scifact_slice(tmp_path: Path) -> Path:
    """The first 30 SciFact abstracts as a corpus file."""
    records = head_lines(shared("scifact"), 30)
    path = tmp_path / "scifact30.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def make_pdf(lines: list[str], title: str | None = None) -> bytes:
    """A minimal valid one-page PDF with a real text layer."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    content = "BT /F1 11 Tf 72 720 Td 14 TL " + " ".join(f"({esc(line)}) '" for line in lines) + " ET"
    info = (
        f"<< /Title ({esc(title)}) /Author (Ada Lovelace; Alan Turing) /CreationDate (D:20190101000000) >>"
        if title
        else "<< >>"
    )
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        info,
    ]
    return _pdf_bytes(objects)


def make_layout_pdf(pages: list[list[tuple]], info: str = "<< >>") -> bytes:
    """A real multi-page PDF with laid-out lines: each line ``(text, size, y)`` or ``(text, size, y, x, bold)``,
    ``y`` from the top of an A4 page (595 x 842 pt), in Helvetica (bold: Helvetica-Bold)."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    n = len(pages)
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for lines in pages:
        ops = []
        for line in lines:
            text, size, y, x, bold = (*line, 72, False)[:5] if len(line) == 3 else line
            ops.append(f"BT /F{2 if bold else 1} {size} Tf {x} {842 - y} Td ({esc(text)}) Tj ET")
        content = "\n".join(ops)
        page_obj = len(objects) + 1
        kids.append(f"{page_obj} 0 R")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {page_obj + 1} 0 R "
            f"/Resources << /Font << /F1 {3 + 2 * n} 0 R /F2 {4 + 2 * n} 0 R >> >> >>"
        )
        objects.append(f"<< /Length {len(content)} >>\nstream\n{content}\nendstream")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {n} >>"
    objects += [
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>",
        info,
    ]
    return _pdf_bytes(objects)


def _pdf_bytes(objects: list[str]) -> bytes:
    """A PDF file of numbered objects (the first the catalog, the last the Info dictionary), with its xref."""
    out = b"%PDF-1.4\n"
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out
