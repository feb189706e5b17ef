"""OCR of image-only PDF pages (rag.pdf.ocr) on real scans made here with Pillow.

Tests that run Tesseract are skipped when it is not installed; the error paths that need no
Tesseract always run. On the 2-core dev machine one sparse page below takes about 0.5 s
and a dense one (50 lines of 10 pt) about 3 s.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw, ImageFont

from rag.errors import CorruptFileError, EmptyInputError
from rag.pdf import ocr
from rag.pdf.ocr import ocr_page, ocr_pages, tesseract_available

needs_tesseract = pytest.mark.skipif(
    not tesseract_available(), reason="tesseract binary not on PATH (apt-get install tesseract-ocr)"
)

# A scan at 150 dpi keeps the test PDFs small; ocr_page re-renders them at its own 300 dpi.
SCAN_DPI = 150
# US Letter, 8.5 x 11 inches, at SCAN_DPI.
PAGE_SIZE = (int(8.5 * SCAN_DPI), 11 * SCAN_DPI)
# 40 px at 150 dpi is ~19 pt: large, clean print, so a miss means a bug, not a hard scan.
FONT_PX = 40

# Bold sans faces that Debian/Ubuntu images commonly have; Pillow's bundled font is the fallback.
FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
]

PAGE_ONE = ["Vitamin D supplementation", "reduced fractures by", "20 percent."]
PAGE_TWO = ["Placebo patients had", "more hip fractures", "after 36 months."]


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, FONT_PX)
    return ImageFont.load_default(size=FONT_PX)


def _page_image(lines: list[str]) -> Image.Image:
    img = Image.new("L", PAGE_SIZE, color=255)
    draw = ImageDraw.Draw(img)
    font = _font()
    for n, line in enumerate(lines):
        # One inch margins; lines 1.75 font heights apart so Tesseract sees separate text lines.
        draw.text((SCAN_DPI, SCAN_DPI + int(n * FONT_PX * 1.75)), line, fill=0, font=font)
    return img


def make_scan(path: Path, pages: list[list[str]]) -> Path:
    """An image-only PDF with one page per entry of ``pages`` (each a list of text lines)."""
    images = [_page_image(lines) for lines in pages]
    try:
        images[0].save(path, "PDF", resolution=SCAN_DPI, save_all=True, append_images=images[1:])
    finally:
        for img in images:
            img.close()
    return path


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    return make_scan(tmp_path / "scan.pdf", [PAGE_ONE])


@pytest.fixture
def two_page_scan(tmp_path: Path) -> Path:
    return make_scan(tmp_path / "two.pdf", [PAGE_ONE, PAGE_TWO])


@pytest.fixture
def fake_tesseract(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend Tesseract is installed, for error paths that fail before it would run."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")


def test_scan_has_no_text_layer(two_page_scan: Path) -> None:
    pdf = pdfium.PdfDocument(two_page_scan)
    try:
        assert len(pdf) == 2
        for page in pdf:
            textpage = page.get_textpage()
            try:
                assert textpage.get_text_range().strip() == ""
            finally:
                textpage.close()
                page.close()
    finally:
        pdf.close()


@needs_tesseract
def test_ocr_page_reads_the_words(scan: Path) -> None:
    text = ocr_page(scan, 0).lower()
    for word in ("vitamin", "supplementation", "fractures", "20", "percent"):
        assert word in text, f"{word!r} not in OCR output {text!r}"


@needs_tesseract
def test_ocr_pages_yields_each_page_in_order(two_page_scan: Path) -> None:
    results = list(ocr_pages(two_page_scan, [0, 1]))
    assert [index for index, _ in results] == [0, 1]
    first, second = (text.lower() for _, text in results)
    assert "vitamin" in first and "placebo" not in first
    assert "placebo" in second and "36" in second and "vitamin" not in second


@needs_tesseract
def test_ocr_pages_stops_cleanly_when_abandoned(two_page_scan: Path) -> None:
    # Closing the generator after one page must release the document and the temp dir without
    # warnings (filterwarnings=error would turn a leak into a failure).
    pages = ocr_pages(two_page_scan, [1, 0])
    index, text = next(pages)
    pages.close()
    assert index == 1 and "placebo" in text.lower()


@needs_tesseract
def test_tesseract_failure_is_a_corrupt_file_error(scan: Path) -> None:
    with pytest.raises(CorruptFileError, match=r"OCR of page 1 failed: tesseract exit \d+") as info:
        ocr_page(scan, 0, lang="no_such_language")
    assert info.value.source == str(scan)


@needs_tesseract
def test_timeout_is_a_corrupt_file_error(scan: Path) -> None:
    # 10 ms is far too short for any page; subprocess.run kills and reaps the child.
    with pytest.raises(CorruptFileError, match="OCR of page 1 failed: timed out"):
        ocr_page(scan, 0, timeout=0.01)


def test_missing_tesseract_is_an_empty_input_error(scan: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    assert not tesseract_available()
    with pytest.raises(EmptyInputError, match=r"install Tesseract \(apt-get install tesseract-ocr\)") as info:
        ocr_page(scan, 0)
    assert info.value.source == str(scan)
    assert info.value.reason.startswith("PDF has no text layer (scanned image?)")


def test_empty_path_means_no_tesseract(scan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert not tesseract_available()
    with pytest.raises(EmptyInputError):
        list(ocr_pages(scan, [0]))


def test_binary_vanishing_after_the_check(scan: Path, fake_tesseract: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def not_found(*args: object, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        raise FileNotFoundError("tesseract")

    monkeypatch.setattr(ocr.subprocess, "run", not_found)
    with pytest.raises(EmptyInputError, match="install Tesseract"):
        ocr_page(scan, 0)


def test_damaged_pdf_is_a_corrupt_file_error(tmp_path: Path, fake_tesseract: None) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4\nthis is not a PDF body\n")
    with pytest.raises(CorruptFileError, match="cannot open PDF for OCR"):
        ocr_page(bad, 0)


def test_page_out_of_range(scan: Path, fake_tesseract: None) -> None:
    with pytest.raises(IndexError, match="page 3 out of range"):
        ocr_page(scan, 3)


def test_tesseract_runs_single_threaded_unless_told_otherwise(
    scan: Path, fake_tesseract: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, str]] = []

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        seen.append(kwargs["env"])  # type: ignore[arg-type]
        assert cmd[2:] == ["stdout", "-l", "eng", "--psm", "1"]
        return subprocess.CompletedProcess(cmd, 0, stdout=b"Vitamin D\n\f", stderr=b"")

    monkeypatch.setattr(ocr.subprocess, "run", fake_run)
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    assert ocr_page(scan, 0) == "Vitamin D"
    monkeypatch.setenv("OMP_THREAD_LIMIT", "2")
    ocr_page(scan, 0)
    assert [env["OMP_THREAD_LIMIT"] for env in seen] == ["1", "2"]
