"""Text normalisation for every input kind: ligatures, detached accents, control characters, line-break hyphens.

PDF text layers spell "reﬁned" with a ligature, "M¨uhlenberg" with a spacing diaeresis, and split
words at line ends ("differ-" / "ent"). Search, quoting and the checker need one spelling.
"""

from __future__ import annotations

import re
import unicodedata

# Spacing accents (as PDF text layers emit them) → the combining mark they stand for.
_SPACING_ACCENTS = {
    "\u00a8": "\u0308",  # diaeresis ¨
    "\u00b4": "\u0301",  # acute ´
    "\u02c6": "\u0302",  # circumflex ˆ
    "\u02dc": "\u0303",  # tilde ˜
    "\u00b8": "\u0327",  # cedilla ¸
    "\u02c7": "\u030c",  # caron ˇ
    "\u02da": "\u030a",  # ring ˚
}
_DETACHED = re.compile("([" + "".join(_SPACING_ACCENTS) + "])([A-Za-zı])")  # ı: TeX puts accents on a dotless i
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufffe\ufeff\u200b\u00ad]")  # \x0b \x0c stay: white space
_C1 = re.compile(r"[\x80-\x9f]")  # cp1252 punctuation decoded as Latin-1 ("1\x964" meant "1–4")
_HYPHEN_BREAK = re.compile(r"([A-Za-z]{2,})-\s*\n\s*([a-z]{2,})")
SOFT_BREAK = "\ufffe"
"""What pdfium puts where a word was hyphenated at a line end."""


_LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
}
_LIGATURE = re.compile("[" + "".join(_LIGATURES) + "]")


def _cp1252(m: re.Match[str]) -> str:
    try:
        return m.group(0).encode("latin-1").decode("cp1252")
    except UnicodeDecodeError:
        return " "


def normalize(text: str, accents: bool = False) -> str:
    """Ligatures expanded, detached accents rejoined, control characters dropped, NFC.

    Not NFKC: it would also turn 10⁹ into 109 and m² into m2, which science cannot afford. ``accents``
    rejoins the spacing accents PDF text layers emit (``M¨uhlenberg``); elsewhere ``´`` may be an apostrophe.

    >>> normalize("The reﬁned M¨uhlenberg ´etude of Lemaˆıtre: 10⁹ cells\\x07", accents=True)
    'The refined Mühlenberg étude of Lemaître: 10⁹ cells'
    """
    if accents:
        text = _DETACHED.sub(
            lambda m: unicodedata.normalize("NFC", m.group(2).replace("ı", "i") + _SPACING_ACCENTS[m.group(1)]), text
        )
    text = _C1.sub(_cp1252, text)
    text = unicodedata.normalize("NFC", _LIGATURE.sub(lambda m: _LIGATURES[m.group(0)], text))
    return _CONTROL.sub("", text)


def one_line(text: str | None) -> str:
    """:func:`normalize`'d text on one line, white space collapsed ("" for None): for titles, labels and
    the text of markup (XML, JSON) where line breaks are layout, not meaning."""
    return " ".join(normalize(text).split()) if text else ""


def join_hyphenated(head: str, tail: str, vocabulary: set[str]) -> str:
    """``head`` ended a line with a hyphen before ``tail``: the word rejoined when it is one
    (``"differ" + "ent"``), kept hyphenated when the parts are a compound (``"high" + "field"``).

    A word is known by ``vocabulary`` (the document's own words, lower case): the joined form
    occurring elsewhere proves it; failing that, the hyphenated form occurring proves a compound;
    with neither, a lower-case tail joins (most line-end hyphens in prose are hyphenation).
    """
    joined = f"{head}{tail}"
    if joined.lower() in vocabulary:
        return joined
    if f"{head}-{tail}".lower() in vocabulary:
        return f"{head}-{tail}"
    return joined if tail[:1].islower() else f"{head}-{tail}"


def dehyphenate(text: str, vocabulary: set[str] | None = None) -> str:
    """Line-break hyphens of plain text (``"differ-\\nent"``) removed where the joined word is a word."""
    vocab = vocabulary if vocabulary is not None else words_of(text)
    return _HYPHEN_BREAK.sub(lambda m: join_hyphenated(m.group(1), m.group(2), vocab), text)


def words_of(text: str) -> set[str]:
    """The lower-cased words and hyphenated compounds of ``text`` (what :func:`join_hyphenated` consults)."""
    return {w.lower() for w in re.findall(r"[A-Za-z]+(?:-[A-Za-z]+)*", text.replace("-\n", "\n"))} | {
        w.lower() for w in re.findall(r"[A-Za-z]+", text)
    }
