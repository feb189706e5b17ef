"""Text helpers every connector shares: markup flattened to text (HTML abstracts of Europe PMC,
JATS fragments of Crossref), structured abstracts split at their labels, JSON bodies read with a
typed error, MEDLINE-style names, and one notice list from several services."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from rag.errors import SourceResponseError
from rag.lang.normalize import one_line as clean
from rag.types import Notice, PaperSection

# A tag starts with a letter right after `<` or `</`: "p < .001" and "<1 year" in abstract text are not tags.
_TAG = re.compile(r"</?([A-Za-z][\w:.-]*)(?:\s[^<>]*)?/?>")
_BLOCK_TAGS = {"p", "br", "div", "li", "ul", "ol", "sec", "title", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td"}
# Headings that open a part of a structured abstract: HTML <h4> (Europe PMC), JATS <title> (Crossref), or a
# short bold label ending in a colon, "<b>Methods:</b>".
_HEADING = re.compile(
    r"<(h[1-6]|(?:jats:)?title)\b[^<>]*>(?P<h>.*?)</\1\s*>"
    r"|<(b|strong)\b[^<>]*>(?P<b>[^<>]{1,60}?):\s*</\3\s*>"
    r"|<(b|strong)\b[^<>]*>(?P<b2>[^<>]{1,60}?)</\5\s*>:",
    re.S | re.I,
)
ABSTRACT = "Abstract"


def plain_text(markup: str | None) -> str:
    """HTML/JATS markup flattened to text: inline tags dropped (``H<sub>2</sub>O`` → ``H2O``), block tags
    become spaces, entities decoded."""
    if not markup:
        return ""

    def tag(m: re.Match[str]) -> str:
        return " " if m.group(1).lower().split(":")[-1] in _BLOCK_TAGS else ""

    return clean(html.unescape(_TAG.sub(tag, markup)))


def label_title(label: str | None) -> str:
    """A structured abstract's label as a section title: ``OBJECTIVES`` → ``Objectives``, ``methods:`` →
    ``Methods``."""
    text = clean(label).rstrip(":.").strip()
    if text.isupper():
        text = text.capitalize()
    return text[:1].upper() + text[1:]


def merge_sections(parts: list[tuple[str, str]]) -> list[PaperSection]:
    """(title, text) parts as sections; empty parts dropped, neighbours with the same title joined."""
    sections: list[PaperSection] = []
    for title, text in parts:
        if not text:
            continue
        if sections and sections[-1].title == title:
            sections[-1] = PaperSection(title=title, text=f"{sections[-1].text} {text}")
        else:
            sections.append(PaperSection(title=title, text=text))
    return sections


def markup_sections(markup: str | None, default: str = ABSTRACT) -> list[PaperSection]:
    """An abstract in HTML or JATS, one section per labelled part (``<h4>Background</h4>…``); text before
    the first label, or an abstract without labels, is titled ``default``."""
    if not markup or not markup.strip():
        return []
    parts: list[tuple[str, str]] = []
    title, start = default, 0
    for m in _HEADING.finditer(markup):
        parts.append((title, plain_text(markup[start : m.start()])))
        title = label_title(plain_text(m.group("h") or m.group("b") or m.group("b2"))) or default
        start = m.end()
    parts.append((title, plain_text(markup[start:])))
    return merge_sections(parts)


def load_xml(source: str, data: bytes) -> ET.Element:
    """An XML body, or :class:`SourceResponseError` naming the service."""
    try:
        return ET.fromstring(data)
    except ET.ParseError as e:
        raise SourceResponseError(source, f"response is not well-formed XML ({e})") from e


def load_json(source: str, data: bytes) -> Any:
    """A JSON body, or :class:`SourceResponseError` naming the service."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SourceResponseError(source, f"response is not JSON ({e}): {preview(data)}") from e


def preview(data: bytes, size: int = 120) -> str:
    """The start of a body, for an error message (``size``: enough to recognise an HTML or text page)."""
    return repr(data[:size].decode("utf-8", "replace"))


def as_int(value: object) -> int | None:
    """An integer from JSON that may hold it as text; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def flip_name(name: str) -> str:
    """``Schoenfeld JD`` (MEDLINE style, family then initials) → ``JD Schoenfeld``; other names unchanged."""
    words = clean(name).rstrip(".").split()
    if len(words) > 1 and words[-1].isalpha() and words[-1].isupper() and len(words[-1]) <= 4:  # ≤4 initials
        return " ".join([words[-1], *words[:-1]])
    return " ".join(words)


def merge_notices(*groups: Iterable[Notice]) -> list[Notice]:
    """The notices of several services, each once: one with a DOI is the same notice wherever it is
    reported (the first report kept, a missing date filled from a later one); one without is kept unless
    the same service reported the same kind and label already."""
    merged: list[Notice] = []
    seen: dict[tuple[str, ...], int] = {}
    for notice in (n for group in groups for n in group):
        key = ("doi", notice.doi.lower()) if notice.doi else ("label", notice.kind, notice.source, notice.label)
        if key in seen:
            kept = merged[seen[key]]
            if not kept.date and notice.date:
                merged[seen[key]] = kept.model_copy(update={"date": notice.date})
            continue
        seen[key] = len(merged)
        merged.append(notice)
    return merged
