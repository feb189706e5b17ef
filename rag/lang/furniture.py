"""Text that is a paper's packaging, not its findings: page numbers, arXiv stamps, permission and
copyright lines, download stamps, correspondence and dates of receipt. The PDF reader removes such
lines; the checker refuses to count such a sentence as a supported claim, however exactly it quotes.

>>> is_boilerplate("Downloaded from https://academic.oup.com/ on 3 May 2021.")
True
>>> is_boilerplate("Journal of Bone and Mineral Research 35(4)")
True
>>> is_boilerplate("Vitamin D supplementation reduced fractures by 20%.")
False
"""

from __future__ import annotations

import re

PAGE_NUMBER = re.compile(r"^(?:page\s*)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?$", re.IGNORECASE)
ARXIV_STAMP = re.compile(r"^arXiv:\s?\S+\s+\[[^\]]+\]\s+\d{1,2}\s+\w{3}\s+\d{4}$", re.IGNORECASE)
PERMISSION = re.compile(
    r"^(?:permission to make digital or hard copies|copyright ©|©\s?\d{4}|\(c\)\s?\d{4}|this work is licensed under|"
    r"publication rights licensed to|acm isbn|acm reference format|https?://doi\.org/10\.1145)",
    re.IGNORECASE,
)
"""The first line of a permission or copyright block (a PDF's page-1 footer)."""
_ANYWHERE = re.compile(
    r"\ball rights reserved\b|\bdownloaded from\b|\bfor personal use only\b|\bprotected by copyright\b|"
    r"\bcreative commons\b|\bopen access article distributed\b|\bcorresponding author\b|"
    r"\b(?:e-?mail|tel|fax)\s*[:.]|[\w.+-]+@[\w-]+\.[\w.]+|"
    r"\b(?:received|accepted|published)(?: online)?\s*:?\s*(?:\d{1,2}\s+)?"  # Received: 12 March 2020
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?:\d{1,2},?\s+)?\d{4}\b|"
    r"\bthis article is (?:a|an) (?:preprint|open access)\b|\bpreprint (?:submitted to|not peer reviewed)\b|"
    r"\bsupplementary (?:material|data|information) (?:is|are) available\b",
    re.IGNORECASE,
)
_WORDS = re.compile(r"[A-Za-z]{2,}")
_FEWEST_WORDS = 3  # "J Clin Invest. 2010;120(3):e1" or "Page 3 of 12": too few words to state anything
_HEADER_CAPITALS = 0.6  # a running header or title is set in title case: most of its words capitalised
_ENDS = re.compile(r"[.!?:;\"”]\s*$")


def is_boilerplate(text: str) -> bool:
    """Whether a sentence or line is packaging (stamps, permissions, correspondence), not a statement."""
    line = text.strip()
    if PAGE_NUMBER.match(line) or ARXIV_STAMP.match(line) or PERMISSION.match(line) or _ANYWHERE.search(line):
        return True
    words = _WORDS.findall(line)
    if len(words) < _FEWEST_WORDS:
        return True
    capitals = sum(w[0].isupper() for w in words) / len(words)
    return capitals >= _HEADER_CAPITALS and not _ENDS.search(line)  # a title-case line that ends no sentence
