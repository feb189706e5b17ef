"""JATS markup read as text: inline elements flattened, superscripts and MathML written compactly,
paragraphs and lists split into blocks, floats and furniture skipped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

from rag.lang.normalize import one_line as clean

# Never text: floats (their captions become sections apart), links to files, footnotes, metadata blocks,
# signatures and acknowledgements.
_SKIP = frozenset(
    {
        "fig", "fig-group", "table-wrap", "table-wrap-group", "supplementary-material", "graphic", "inline-graphic",
        "media", "fn", "fn-group", "alt-text", "long-desc", "object-id", "permissions", "annotation",
        "annotation-xml", "tex-math", "processing-meta", "sec-meta", "ref-list", "contrib-group", "aff", "address",
        "sig-block", "ack", "glossary", "bio",
    }
)  # fmt: skip
FLOATS = ("fig", "table-wrap")
# Elements that break a paragraph: each is read as paragraphs of its own.
_BLOCKS = frozenset({"p", "list", "def-list", "disp-quote", "boxed-text", "statement", "speech", "verse-group"})
# Elements whose text never runs into their neighbours' ("<title>Box 1</title><p>Text" is not "Box 1Text").
_SPACED = _BLOCKS | {"list-item", "title", "label", "caption", "def-item", "term", "def", "tr", "td", "th", "break"}
_SUPERSCRIPT = str.maketrans("0123456789+-−=()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾")
_SUPERSCRIPT_LETTER = dict(zip("abcdefghijklmnoprstuvwxyz", "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ", strict=True))
_SPACED_OPS = set("+−=<>≤≥≈≠→←↔±∓×÷∈∉⊂⊆∼≡∝")  # binary operators and relations, spaced as typeset
_MATH_FORMS = {
    "msup": "{}^{}", "mover": "{}^{}", "msub": "{}_{}", "munder": "{}_{}", "msubsup": "{}_{}^{}",
    "munderover": "{}_{}^{}", "mfrac": "{}/{}", "msqrt": "√{}", "mroot": "√{}{}",
}  # fmt: skip


@dataclass(frozen=True)
class _Mode:
    table: bool = False  # a table cell keeps superscript citation numbers (they are a "Reference" column)
    citation: bool = False  # a printed reference: "<italic>Cell</italic><bold>12</bold>" needs a space between
    heading: bool = False  # titles drop their footnote and affiliation markers


PROSE, TABLE, CITE, HEADING = _Mode(), _Mode(table=True), _Mode(citation=True), _Mode(heading=True)


def local_name(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""  # namespaced (JATS in OAI-PMH, MathML)


def kids(el: ET.Element, *names: str) -> list[ET.Element]:
    return [c for c in el if local_name(c) in names]


def kid(el: ET.Element | None, *names: str) -> ET.Element | None:
    return None if el is None else next((c for c in el if local_name(c) in names), None)


def all_of(el: ET.Element, *names: str) -> Iterator[ET.Element]:
    return (d for d in el.iter() if local_name(d) in names)


def flat(el: ET.Element | None, mode: _Mode = PROSE) -> str:
    """An element's printed text, markup flattened, white space normalised."""
    return "" if el is None else clean(_inner(el, mode))


def _inner(el: ET.Element, mode: _Mode) -> str:
    out = [el.text or ""]
    kids = list(el)
    for i, child in enumerate(kids):
        emit(child, out, mode)
        if mode.citation and not child.tail and i + 1 < len(kids) and next(kids[i + 1].itertext(), " ")[:1].isalnum():
            out.append(" ")  # adjacent elements of a printed reference are separate words when rendered
    return "".join(out)


def emit(el: ET.Element, out: list[str], mode: _Mode) -> None:
    """Append ``el``'s printed text, then its tail."""
    tag = local_name(el)
    if tag in _SKIP or (mode.heading and tag == "xref"):
        pass
    elif tag in ("disp-formula", "inline-formula", "alternatives", "math"):
        out.append(f" {_formula(el)} " if tag == "disp-formula" else _formula(el))
    elif _superscript_citation(el):
        # After the full stop ("restriction.¹⁴ This") a marker in any plain form keeps the sentence from ending
        # (rag.lang.sentences), and as digits it reads as part of the text: prose leaves it out, as rag.pdf does.
        out.append(f" {''.join(el.itertext())} " if mode.table else "")
    elif tag == "sup":
        out.append(_sup(_inner(el, mode)))
    elif tag == "pub-id" and mode.citation:
        if (el.get("pub-id-type") or "").lower() == "doi":
            out.append(f" doi:{_inner(el, mode).strip()} ")  # a PubMed id is a link, not printed text
    elif tag in _SPACED:
        out.append(f" {_inner(el, mode)} ")
    else:
        out.append(_inner(el, mode))
    out.append(el.tail or "")


def _superscript_citation(el: ET.Element) -> bool:
    """``<sup><xref ref-type="bibr">12</xref>,<xref …>13</xref></sup>`` or ``<xref ref-type="bibr"><sup>12</sup>``."""
    tag, kids = local_name(el), list(el)
    if tag == "xref":
        return (
            el.get("ref-type") == "bibr"
            and not (el.text or "").strip()
            and len(kids) == 1
            and local_name(kids[0]) == "sup"
        )
    if tag != "sup" or not kids or any(local_name(k) != "xref" or k.get("ref-type") != "bibr" for k in kids):
        return False
    glue = (el.text or "") + "".join(k.tail or "" for k in kids)
    return re.fullmatch(r"[\s,;–\-−\[\]()]*", glue) is not None


def _sup(text: str) -> str:
    """A superscript in plain text: 10⁻⁹, Ca²⁺, a table's footnote mark ᵃ; words stay as they are."""
    s = text.strip()
    if s == "TM":
        return "™"
    if s in _SUPERSCRIPT_LETTER:
        return _SUPERSCRIPT_LETTER[s]
    return s.translate(_SUPERSCRIPT) if re.fullmatch(r"[0-9+\-−=(), –]+", s) else text


def _formula(el: ET.Element) -> str:
    """A formula in a compact linear form ("x^2 + y_i = (a)/(b)") from its MathML, else its TeX, else its text."""
    math = next(all_of(el, "math"), None)
    tex = next(all_of(el, "tex-math"), None)
    if math is not None:
        text = _math(math)
    elif tex is not None:
        body = re.search(r"\\begin\{document\}(.*?)\\end\{document\}", tex.text or "", re.S)  # PMC wraps a whole
        text = (body.group(1) if body else tex.text or "").replace("$", " ")  # LaTeX document round it
    else:
        parts = [el.text or ""]
        for child in (k for k in el if local_name(k) != "label"):
            emit(child, parts, PROSE)
        text = "".join(parts)
    label = flat(kid(el, "label"))
    return clean(f"{text} {label}")


def _math(el: ET.Element) -> str:
    tag = local_name(el)
    if tag in ("annotation", "annotation-xml", "mphantom", "none", "mprescripts"):
        return ""
    if tag in ("mi", "mn", "ms", "mo", "mtext"):
        text = (el.text or "").strip()
        return f" {text} " if tag == "mtext" or text in _SPACED_OPS else text
    parts = [_math(k) for k in el]
    form = _MATH_FORMS.get(tag, "")
    if tag == "mover" and len(parts) == 2 and len(parts[1]) == 1 and not parts[1].isalnum():
        return parts[0] + parts[1]  # an accent: x̄, not x^¯
    if form.count("{") == len(parts):
        return form.format(*map(_group, parts))
    return (" " if tag in ("mtr", "mtable") else "").join(parts[:1] if tag == "semantics" else parts)


def _group(s: str) -> str:
    s = s.strip()
    return s if len(s) <= 1 or re.fullmatch(r"[\w.]+", s) else f"({s})"


def _paragraphs(el: ET.Element) -> list[str]:
    """A paragraph's text; a list or quote inside it is a paragraph of its own, while a figure or table inside it
    is left out (its caption is a section apart), so the sentence running round it stays whole."""
    out: list[str] = []
    buf = [el.text or ""]
    for child in el:
        if local_name(child) in _BLOCKS:
            _flush(buf, out)
            out.extend(blocks(child))
            buf.append(child.tail or "")
        else:
            emit(child, buf, PROSE)
    _flush(buf, out)
    return out


def _flush(buf: list[str], out: list[str]) -> None:
    text = clean("".join(buf))
    if text:
        out.append(text)
    buf.clear()


def blocks(el: ET.Element) -> list[str]:
    """The paragraphs of one block: a ``<p>``, a list (an item each), a box or quote (its heading, then its text)."""
    tag = local_name(el)
    if tag in _SKIP or tag in ("title", "label", "sec-meta"):
        return []
    if tag == "p":
        return _paragraphs(el)
    if tag == "list":
        return _list_items(el)
    if tag == "def-list":
        items = ((flat(kid(i, "term")), " ".join(flat(d) for d in kids(i, "def"))) for i in kids(el, "def-item"))
        return [f"{term}: {d}" if term else d for term, d in items if term or d]
    if tag in ("boxed-text", "disp-quote", "statement", "speech", "verse-group", "sec", "caption"):
        head = " ".join(t for t in (flat(kid(el, "label")), flat(kid(el, "title"))) if t)
        inner = [p for c in el for p in blocks(c)]  # a box's caption is read as its first block
        return [head, *inner] if head else inner
    text = flat(el)
    return [text] if text else []


def _list_items(el: ET.Element) -> list[str]:
    out = []
    for i, item in enumerate(kids(el, "list-item"), 1):
        label = kid(item, "label")
        marker = flat(label) if label is not None else {"order": f"{i}.", "bullet": "•"}.get(el.get("list-type", ""))
        paras = [p for c in item for p in blocks(c)]
        if paras and marker:
            paras[0] = f"{marker} {paras[0]}"
        out.extend(paras)
    return out


def heading_of(el: ET.Element) -> str:
    return " ".join(t for t in (flat(kid(el, "label"), HEADING), flat(kid(el, "title"), HEADING)) if t)


def person(el: ET.Element, surname_first: bool = False) -> str:
    """A name as "Given Surname" (a reference's "Surname GN" when ``surname_first``); a collaboration's as printed."""
    if local_name(el) in ("name-alternatives", "collab-alternatives") and len(el):
        el = el[0]  # the first of the alternative spellings
    surname, given, suffix = (flat(kid(el, part)) for part in ("surname", "given-names", "suffix"))
    if not surname and not given:
        return flat(el)
    parts = (surname, given, suffix) if surname_first else (given, surname, suffix)
    return " ".join(p for p in parts if p)
