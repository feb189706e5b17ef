"""OCR of image-only PDF pages with the Tesseract command-line tool.

Used when a PDF has no text layer (a scan) and the user asked for OCR. Pages are rendered with
pypdfium2 one at a time and handed to ``tesseract`` as a temporary PNG, so a 500-page scan never
holds more than one page image in memory. Tesseract runs as a subprocess rather than through a
Python binding so that the library needs no compiled extra, and a missing binary is an ordinary,
explained input error instead of an import failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Generator, Iterable
from contextlib import closing
from pathlib import Path

import pypdfium2 as pdfium

from rag.errors import CorruptFileError, EmptyInputError

__all__ = ["ocr_page", "ocr_pages", "tesseract_available"]

TESSERACT = "tesseract"

# Tesseract's documentation says it works best at 300 dpi or more; lower loses small print
# (footnotes, subscripts), higher costs time with the pixel count (dpi squared) for little gain.
DEFAULT_DPI = 300

# PDF user space is measured in points, 72 to the inch, so scale = dpi / 72.
POINTS_PER_INCH = 72

# --psm 1 = automatic page segmentation with orientation and script detection: a scanned paper page
# has columns, headings and figure captions, and may be scanned sideways.
PAGE_SEGMENTATION_MODE = "1"

# A dense 300-dpi page (50 lines of 10 pt) takes ~3 s on two cores; two minutes is far beyond any
# healthy run and only cuts off a hung or pathological page.
DEFAULT_TIMEOUT = 120.0

# How much of Tesseract's stderr goes into an error message: enough for its one-line reason
# ("Failed loading language 'xyz'"), not a screenful of diagnostics.
STDERR_CHARS = 500

# Tesseract's OpenMP threads spin-wait on each other: on a 2-core machine with other load, the dense
# page above took 17-21 s with the default thread count, 5.6 s with 2 threads and 2.7-3.3 s with 1.
# So one thread per page; an OMP_THREAD_LIMIT already in the environment wins.
OMP_THREAD_LIMIT = "1"

_MISSING_TESSERACT = (
    "PDF has no text layer (scanned image?); install Tesseract (apt-get install tesseract-ocr) and ingest with OCR"
)


def tesseract_available() -> bool:
    """Is the ``tesseract`` binary on PATH?"""
    return shutil.which(TESSERACT) is not None


def ocr_page(
    pdf_path: Path,
    page_index: int,
    dpi: int = DEFAULT_DPI,
    lang: str = "eng",
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """The text Tesseract reads on page ``page_index`` (0-based) of ``pdf_path``.

    Raises :class:`EmptyInputError` when Tesseract is not installed, :class:`CorruptFileError` when
    the PDF cannot be opened or Tesseract fails or times out, and :class:`IndexError` for a page
    number outside the document.
    """
    # closing(): leave no half-run generator (open document, temporary directory) for the GC.
    with closing(ocr_pages(pdf_path, [page_index], dpi=dpi, lang=lang, timeout=timeout)) as pages:
        for _, text in pages:
            return text
    raise AssertionError("unreachable: ocr_pages yields once per requested page")


def ocr_pages(
    pdf_path: Path,
    pages: Iterable[int],
    dpi: int = DEFAULT_DPI,
    lang: str = "eng",
    timeout: float = DEFAULT_TIMEOUT,
) -> Generator[tuple[int, str], None, None]:
    """Yield ``(page_index, text)`` for each of ``pages`` in the order given, one page at a time.

    The document is opened once and kept open only while the generator runs; closing the
    generator early (``break``, garbage collection) closes it too. Like any generator it does
    nothing, and raises nothing, until iterated; errors are those of :func:`ocr_page`.
    """
    pdf_path = Path(pdf_path)
    # Fail before rendering anything: without the binary every page would fail the same way.
    if not tesseract_available():
        raise EmptyInputError(pdf_path, _MISSING_TESSERACT)
    pdf = _open(pdf_path)
    try:
        with tempfile.TemporaryDirectory(prefix="rag-ocr-") as tmp:
            image = Path(tmp) / "page.png"  # reused: only one page is on disk at a time
            for index in pages:
                _render_png(pdf, pdf_path, index, dpi, image)
                yield index, _tesseract(image, pdf_path, index, lang, timeout)
    finally:
        pdf.close()


def _open(pdf_path: Path) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(pdf_path)
    except (pdfium.PdfiumError, OSError) as exc:
        raise CorruptFileError(pdf_path, f"cannot open PDF for OCR: {exc}") from None


def _render_png(pdf: pdfium.PdfDocument, pdf_path: Path, index: int, dpi: int, out: Path) -> None:
    """Render one page to ``out`` and release every pdfium/Pillow buffer before returning."""
    if not 0 <= index < len(pdf):
        raise IndexError(f"{pdf_path}: page {index} out of range (the PDF has {len(pdf)} pages)")
    page = pdf[index]
    try:
        # Grayscale: Tesseract binarises anyway, and one byte per pixel instead of three keeps a
        # 300-dpi Letter page (2550 x 3300 px) at ~8 MB instead of ~25 MB.
        bitmap = page.render(scale=dpi / POINTS_PER_INCH, grayscale=True)
        try:
            with bitmap.to_pil() as img:
                # The dpi tag tells Tesseract the real resolution, so it need not guess it (and
                # warn) from the text height.
                img.save(out, "PNG", dpi=(dpi, dpi))
        finally:
            bitmap.close()
    finally:
        page.close()


def _tesseract(image: Path, pdf_path: Path, index: int, lang: str, timeout: float) -> str:
    """Run ``tesseract IMAGE stdout`` and return its text, or raise a :class:`CorruptFileError`."""
    cmd = [TESSERACT, str(image), "stdout", "-l", lang, "--psm", PAGE_SEGMENTATION_MODE]
    env = {**os.environ}
    env.setdefault("OMP_THREAD_LIMIT", OMP_THREAD_LIMIT)
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False, env=env)
    except FileNotFoundError:
        # Removed from PATH between the availability check and now.
        raise EmptyInputError(pdf_path, _MISSING_TESSERACT) from None
    except subprocess.TimeoutExpired:
        # subprocess.run has already killed and reaped the child.
        raise CorruptFileError(pdf_path, f"OCR of page {index + 1} failed: timed out after {timeout:g} s") from None
    except OSError as exc:
        raise CorruptFileError(pdf_path, f"OCR of page {index + 1} failed: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()[-STDERR_CHARS:] or "no message"
        raise CorruptFileError(pdf_path, f"OCR of page {index + 1} failed: tesseract exit {done.returncode}: {detail}")
    # Tesseract writes UTF-8 and ends each page with a form feed, which is not part of the text.
    return done.stdout.decode("utf-8", "replace").replace("\f", "").strip()
