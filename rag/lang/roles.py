"""Sentence roles in a paper — background, method, result, conclusion — from section labels and cue phrases.

Also the cues the extractive drafter reads to set findings apart: limitations and hedges, and a
study's statement of its own aim (which is no finding).
"""

from __future__ import annotations

import re
from typing import Literal

from rag.lang.sentences import sentence_spans
from rag.types import Chunk

# Section labels at the start of a sentence: "RESULTS: ..." (PubMed) or "CONCLUSION Among ..." (S2ORC).
_LABEL = re.compile(r"^\s*((?:[A-Z]{3,}(?: AND)?\s?){1,4})(?::\s*|\s+)(?=[A-Z0-9(])")
_ROLE_OF_LABEL = {
    "background": "background", "introduction": "background", "objective": "background", "objectives": "background",
    "purpose": "background", "aim": "background", "aims": "background", "context": "background", "importance": "background",
    "methods": "method", "method": "method", "design": "method", "setting": "method", "participants": "method",
    "materials and methods": "method", "patients and methods": "method", "interventions": "method",
    "main outcome measures": "method", "study design": "method", "measurements": "method",
    "results": "result", "findings": "result", "main results": "result", "observations": "result",
    "conclusion": "conclusion", "conclusions": "conclusion", "interpretation": "conclusion", "discussion": "conclusion",
    "conclusions and relevance": "conclusion", "significance": "conclusion",
}  # fmt: skip
_CONCLUSION_CUES = re.compile(
    r"\b(we conclude|in conclusion|in summary|taken together|these (?:results|findings|data|observations) "
    r"(?:suggest|indicate|show|demonstrate|support|imply)|our (?:results|findings|data) (?:suggest|indicate|show|demonstrate)|"
    r"this (?:study|work|trial) (?:suggests|shows|demonstrates|indicates)|(?:suggest|indicate)s? that)\b",
    re.IGNORECASE,
)
_RESULT_CUES = re.compile(
    r"(\d+(?:\.\d+)?\s?%|\bp\s?[<=>]\s?0?\.\d|\b(?:CI|OR|HR|RR)\b|\bsignificant(?:ly)?\b|\bwas associated\b|"
    r"\b(?:increased|decreased|reduced|improved|lowered|raised|higher|lower)\b)",
    re.IGNORECASE,
)
_METHOD_CUES = re.compile(
    r"\b(we (?:conducted|performed|analy[sz]ed|examined|enrolled|recruited|randomi[sz]ed|searched|used|measured|studied)|"
    r"randomi[sz]ed|cohort of|participants were|were randomly|meta-analysis of|systematic review of|cross-sectional)\b",
    re.IGNORECASE,
)
LIMIT_CUES = re.compile(
    r"\b(however|no significant|not significant(?:ly)?|did not|does not|do not|was not|were not|no (?:effect|difference|"
    r"association|benefit|evidence)|not associated|limited (?:evidence|data|number|sample)|limitations?|small (?:sample|"
    r"number|study|studies)|further (?:research|studies|trials|work) (?:is|are) (?:needed|required|warranted)|"
    r"remains? (?:unclear|uncertain|controversial|unknown)|conflicting|inconsistent|controversial|"
    r"not (?:yet )?(?:known|clear|established))\b",
    re.IGNORECASE,
)
OBJECTIVE = re.compile(
    r"^(?:the |our )?(?:aims?|objectives?|purpose|goal)s? (?:of|was|were|is)\b|\b(?:this|the present|our) (?:study|paper|"
    r"review|trial|work) (?:aims?|aimed|examines|examined|investigates|investigated|evaluates|evaluated|was designed)\b|"
    r"^(?:we|here we) (?:aimed|sought|investigated|examined|hypothesi[sz]ed|tested|asked)\b|^to (?:determine|assess|"
    r"evaluate|investigate|examine|compare)\b",
    re.IGNORECASE,
)


def sentence_role(text: str, position: float) -> str:
    """A sentence's role in its paper from cue phrases: background, method, result or conclusion."""
    if _CONCLUSION_CUES.search(text):
        return "conclusion"
    if _METHOD_CUES.search(text) and not re.search(r"\d+(\.\d+)?\s?%|p\s?[<=]", text):
        return "method"
    if _RESULT_CUES.search(text):
        return "result"
    return "background" if position < 0.25 else "result"


def strip_label(text: str) -> str:
    """A sentence without its leading section label ("RESULTS: ...", "CONCLUSIONS ...")."""
    label = _LABEL.match(text)
    return text[label.end() :] if label else text


_LIST_MARK = re.compile(r"^\s*[•◦▪▫‣∙●○■□►▸–—*]\s+")  # a list item's bullet: not a word of its sentence

SECTION_PATH = " — "
"""Joins a nested section's headings, parent first (``RESULTS — PRKRA is a target``): the parent says the role."""
_NUMBERING = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+")


DECLARATIONS = (
    r"funding(?: information| sources?)?|financial (?:support|disclosures?)|acknowledge?ments?|"
    r"conflicts? of interests?(?: statement)?|competing (?:financial )?interests?|"
    r"declarations?(?: of (?:competing )?interests?)?|disclosures?|authors?[’']? ?contributions?|consent for publication"
)
"""Headings of a paper's declarations: who paid, who helped, who did what — statements about the work, not findings."""
_APART = re.compile(rf"^(?:({DECLARATIONS})|(keywords|key words|ccs concepts|index terms))\W*$", re.IGNORECASE)


def set_apart(title: str) -> Literal["declaration", "keywords"] | None:
    """Whether a section heading names text that is kept with the paper but never searched as its content:
    ``Acknowledgments`` → declaration, ``KEYWORDS`` → keywords, ``4. Results`` → None."""
    match = _APART.match(_top_heading(title))
    if not match:
        return None
    return "declaration" if match.group(1) else "keywords"


def section_role(title: str) -> str | None:
    """The role a section heading names: ``3. Results`` → result; ``METHODS — Cell culture`` → method."""
    return _ROLE_OF_LABEL.get(_top_heading(title).lower())


def _top_heading(title: str) -> str:
    """A section path's first heading without its numbering: ``3.1 Methods — Cell culture`` → ``Methods``."""
    return _NUMBERING.sub("", title.split(SECTION_PATH)[0].strip())


def chunk_sentences(chunk: Chunk) -> list[tuple[str, str, float]]:
    """A chunk's sentences as ``(text, role, position)``: section labels ("RESULTS: ...") stripped and
    used as the role when present, cue phrases otherwise; position 0-1 within the whole paper."""
    out = []
    spans = sentence_spans(chunk.text)
    role_from_label = section_role(chunk.section)
    for j, (a, b) in enumerate(spans):
        text = chunk.text[a:b]
        text = _LIST_MARK.sub("", text)  # "• Size: The corpus contains …" is the sentence "Size: The corpus …"
        label = _LABEL.match(text)
        if label and label.group(1).strip().lower() in _ROLE_OF_LABEL:
            role_from_label = _ROLE_OF_LABEL[label.group(1).strip().lower()]
            text = text[label.end() :]
        # position within the paper, so "first sentence" means the paper's, not the chunk's
        position = (chunk.index + (j / max(len(spans), 1))) / max(chunk.n_chunks, 1)
        out.append((text.strip(), role_from_label or sentence_role(text, position), position))
    return out
