"""Drafters: turn a question and its evidence into a sectioned, cited draft.

* :class:`LLMDrafter` — one call to an OpenAI-compatible chat model (through :mod:`rag.llm`):
  sources are fenced as data, the model cites them by key (``[S3]``), and the keys are mapped to
  stable ``[n]`` numbers by first appearance across sections.
* :class:`ExtractiveDrafter` — the offline default, no LLM: the evidence is split into sentences,
  each sentence gets a rhetorical role (background, method, result, conclusion) and a relevance
  to the question; result and conclusion sentences are clustered into themes, each theme named
  from its distinctive terms and written as its most informative, non-redundant sentences; hedged
  or negative findings make a limitations section; the papers' own background and conclusion
  sentences open and close the answer. Every sentence is a source's own sentence with its citation.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.embed import Embedder
from rag.errors import LLMResponseError
from rag.llm import ChatModel, Message
from rag.prompts import render
from rag.settings import Settings
from rag.text import sentence_spans, split_sentences, with_citation
from rag.types import Chunk, Evidence, Section, Sentence, Source, Usage

INSUFFICIENT = "INSUFFICIENT_EVIDENCE"


@dataclass
class Draft:
    """A drafter's output, before checking and rendering."""

    title: str
    sections: list[Section]
    sources: list[Source]
    drafter: str
    usage: Usage = field(default_factory=Usage)
    answerable: bool = True
    invalid_keys: list[str] = field(default_factory=list)


# -- shared: numbering sources by first citation -------------------------------------------
class SourceNumbers:
    """Maps evidence (by index) to stable ``[n]`` numbers in order of first citation, per paper."""

    def __init__(self, evidence: Sequence[Evidence]) -> None:
        self.evidence = evidence
        self.sources: list[Source] = []

    def number(self, ev_index: int) -> int:
        return source_for(self.sources, self.evidence[ev_index].chunk).number


def source_for(sources: list[Source], chunk: Chunk) -> Source:
    """The source standing for ``chunk``'s paper, appended (numbered next) when it is new; records the chunk."""
    source = next((s for s in sources if s.doc_id == chunk.doc_id), None)
    if source is None:
        source = Source(
            number=len(sources) + 1,
            doc_id=chunk.doc_id,
            title=chunk.title,
            year=chunk.year,
            authors=chunk.authors,
            doi=chunk.doi,
        )
        sources.append(source)
    if chunk.chunk_id not in source.chunk_ids:
        source.chunk_ids.append(chunk.chunk_id)
    return source


def title_from_question(question: str) -> str:
    """A headline from the question: 'can vitamin d reverse osteoporosis' → 'Can Vitamin D Reverse Osteoporosis?'."""
    q = question.strip().rstrip("?.! ")
    small = {"a", "an", "the", "and", "or", "of", "in", "on", "to", "for", "with", "by", "at", "vs", "from", "as"}
    words = q.split()
    out = []
    for i, w in enumerate(words):
        if w.isupper() or any(c.isdigit() for c in w) or (any(c.isupper() for c in w[1:])):
            out.append(w)  # acronyms, gene names, doses
        elif i > 0 and w.lower() in small:
            out.append(w.lower())
        else:
            out.append(w[:1].upper() + w[1:])
    suffix = "?" if question.strip().endswith("?") or (words and words[0].lower() in _QUESTION_WORDS) else ""
    return " ".join(out) + suffix


_QUESTION_WORDS = {
    "can",
    "does",
    "do",
    "is",
    "are",
    "how",
    "what",
    "which",
    "why",
    "when",
    "should",
    "will",
    "could",
    "who",
}


# -- the LLM drafter ------------------------------------------------------------------------
_KEY = re.compile(r"\[\s*(S?\d+(?:\s*[,;–-]\s*S?\d+)*)\s*\]")


def fence(text: str) -> str:
    """Neutralise anything in a paper that could close or open our source fence."""
    return re.sub(r"</?\s*source\b[^>]*>", "[tag removed]", text, flags=re.IGNORECASE)


def format_sources(evidence: Sequence[Evidence]) -> str:
    blocks = []
    for i, ev in enumerate(evidence, start=1):
        c = ev.chunk
        attrs = f'id="S{i}"' + (f' year="{c.year}"' if c.year else "")
        title = fence(c.title).replace('"', "'")
        blocks.append(f'<source {attrs} title="{title}">\n{fence(c.text)}\n</source>')
    return "\n".join(blocks)


def build_messages(question: str, evidence: Sequence[Evidence], settings: Settings) -> list[Message]:
    system = render("draft_system_v1", max_sections=settings.answer.max_sections)
    user = render("draft_user_v1", question=fence(question), n_sources=len(evidence), sources=format_sources(evidence))
    return [Message("system", system), Message("user", user)]


def _expand_keys(body: str) -> list[int]:
    keys: list[int] = []
    for part in re.split(r"\s*[,;]\s*", body):
        m = re.fullmatch(r"S?(\d+)\s*[–-]\s*S?(\d+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            keys.extend(range(a, b + 1) if 0 < b - a < 20 else [a, b])
        elif re.fullmatch(r"S?\d+", part):
            keys.append(int(part.lstrip("S")))
    return keys


def parse_llm_markdown(text: str, evidence: Sequence[Evidence]) -> tuple[str, list[Section], SourceNumbers, list[str]]:
    """Split the model's Markdown into title and sections; renumber ``[S3]`` keys to ``[n]``."""
    numbers = SourceNumbers(evidence)
    invalid: list[str] = []
    title = ""
    sections: list[Section] = []
    current = Section(title="Introduction", level=2)

    def add_paragraph(paragraph: str) -> None:
        for raw in split_sentences(paragraph):
            sentence, cites = _renumber(raw, evidence, numbers, invalid)
            if sentence:
                current.sentences.append(Sentence(text=sentence, citations=cites))

    buffer: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if heading:
            add_paragraph(" ".join(buffer))
            buffer = []
            level = len(heading.group(1))
            if level == 1 and not title:
                title = heading.group(2).strip()
                continue
            if current.sentences or current.title != "Introduction":
                sections.append(current)
            current = Section(title=heading.group(2).strip(), level=min(max(level, 2), 3))
        elif line.strip():
            buffer.append(re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line.strip()))
        else:
            add_paragraph(" ".join(buffer))
            buffer = []
    add_paragraph(" ".join(buffer))
    if current.sentences:
        sections.append(current)
    sections = [s for s in sections if s.sentences and not re.match(r"(?i)^(sources|references)\b", s.title)]
    return title, sections, numbers, invalid


def _renumber(
    raw: str, evidence: Sequence[Evidence], numbers: SourceNumbers, invalid: list[str]
) -> tuple[str, list[int]]:
    cites: list[int] = []

    def replace(m: re.Match[str]) -> str:
        out = []
        for key in _expand_keys(m.group(1)):
            if 1 <= key <= len(evidence):
                n = numbers.number(key - 1)
                if n not in cites:
                    cites.append(n)
                out.append(f"[{n}]")
            else:
                invalid.append(f"S{key}")
        return "".join(out)

    sentence = _KEY.sub(replace, raw)
    sentence = re.sub(r"(\[\d+\])\s+(?=\[\d+\])", r"\1", sentence).strip()  # "[1] [2]" -> "[1][2]"
    sentence = re.sub(r"\s+([.,;:])", r"\1", sentence)
    return sentence, cites


class LLMDrafter:
    """Drafts with one chat-model call."""

    def __init__(self, chat: ChatModel, settings: Settings) -> None:
        self.chat, self.settings = chat, settings

    async def draft(
        self, question: str, evidence: Sequence[Evidence], on_token: Callable[[str], None] | None = None
    ) -> Draft:
        messages = build_messages(question, evidence, self.settings)
        completion = await self.chat.complete(messages, on_token=on_token)
        usage = Usage(
            llm_calls=1, prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens
        )
        text = completion.text.strip()
        if text.startswith(INSUFFICIENT):
            return Draft(title_from_question(question), [], [], self.chat.name, usage, answerable=False)
        title, sections, numbers, invalid = parse_llm_markdown(text, evidence)
        if not sections:
            raise LLMResponseError(f"The model's answer had no usable text: {text[:200]!r}")
        return Draft(
            title or title_from_question(question), sections, numbers.sources, self.chat.name, usage, True, invalid
        )


# -- the offline extractive drafter ---------------------------------------------------------
_STOP = set(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "may",
        "might",
        "must",
        "shall",
        "using",
        "used",
        "use",
        "among",
        "within",
        "without",
        "however",
        "therefore",
        "thus",
        "whether",
        "either",
        "per",
        "via",
        "based",
        "study",
        "studies",
        "patients",
        "patient",
        "results",
        "result",
        "data",
        "analysis",
        "analyses",
        "group",
        "groups",
        "compared",
        "associated",
        "significant",
        "significantly",
        "found",
        "showed",
        "show",
        "shows",
        "shown",
        "reported",
        "report",
        "including",
        "included",
        "include",
        "total",
        "respectively",
        "mean",
        "median",
        "versus",
        "vs",
        "et",
        "al",
        "fig",
        "one",
        "two",
        "three",
        "four",
        "five",
        "high",
        "higher",
        "low",
        "lower",
        "increase",
        "increased",
        "decrease",
        "decreased",
        "effect",
        "effects",
        "level",
        "levels",
        "risk",
        "years",
        "year",
        "age",
        "aged",
    ]
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]+")
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
_LIMIT_CUES = re.compile(
    r"\b(however|no significant|not significant(?:ly)?|did not|does not|do not|was not|were not|no (?:effect|difference|"
    r"association|benefit|evidence)|not associated|limited (?:evidence|data|number|sample)|limitations?|small (?:sample|"
    r"number|study|studies)|further (?:research|studies|trials|work) (?:is|are) (?:needed|required|warranted)|"
    r"remains? (?:unclear|uncertain|controversial|unknown)|conflicting|inconsistent|controversial|"
    r"not (?:yet )?(?:known|clear|established))\b",
    re.IGNORECASE,
)
_OBJECTIVE = re.compile(
    r"^(?:the |our )?(?:aims?|objectives?|purpose|goal)s? (?:of|was|were|is)\b|\b(?:this|the present|our) (?:study|paper|"
    r"review|trial|work) (?:aims?|aimed|examines|examined|investigates|investigated|evaluates|evaluated|was designed)\b|"
    r"^(?:we|here we) (?:aimed|sought|investigated|examined|hypothesi[sz]ed|tested|asked)\b|^to (?:determine|assess|"
    r"evaluate|investigate|examine|compare)\b",
    re.IGNORECASE,
)
_GENERIC = set(
    """study trial evaluation time recommended current present new important role different several various
    potential possible clinical treatment treatments therapy outcome outcomes factors factor subjects participants
    population evidence findings effect effects recent review method methods model models response rate rates reduced
    reduces reduce improved improves greater lesser small large common compared comparison associations association
    relative following overall whereas previous further independent independently furthermore moreover addition
    additionally published observed performed conducted examined evaluated investigated obtained identified suggested
    demonstrated described determined measured assessed revealed indicated provided include includes including
    presented suggests suggest""".split()
)  # fmt: skip


@dataclass
class _Sent:
    text: str
    ev: int
    role: str
    position: float  # 0 = first sentence of its chunk's paper text, 1 = last
    rel: float = 0.0
    vec: np.ndarray | None = None
    used: bool = False


def _terms(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP and len(w) > 2]


def _stem(word: str) -> str:
    for suffix in ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


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


def chunk_sentences(chunk: Chunk) -> list[tuple[str, str, float]]:
    """A chunk's sentences as ``(text, role, position)``: section labels ("RESULTS: ...") stripped and
    used as the role when present, cue phrases otherwise; position 0-1 within the whole paper."""
    out = []
    spans = sentence_spans(chunk.text)
    role_from_label = _ROLE_OF_LABEL.get(chunk.section.lower())
    for j, (a, b) in enumerate(spans):
        text = chunk.text[a:b]
        label = _LABEL.match(text)
        if label and label.group(1).strip().lower() in _ROLE_OF_LABEL:
            role_from_label = _ROLE_OF_LABEL[label.group(1).strip().lower()]
            text = text[label.end() :]
        # position within the paper, so "first sentence" means the paper's, not the chunk's
        position = (chunk.index + (j / max(len(spans), 1))) / max(chunk.n_chunks, 1)
        out.append((text.strip(), role_from_label or sentence_role(text, position), position))
    return out


class ExtractiveDrafter:
    """The offline drafter: a briefing built from the sources' own sentences, no LLM."""

    name = "extractive"

    def __init__(self, embedder: Embedder, settings: Settings) -> None:
        self.embedder, self.settings = embedder, settings

    def draft_sync(self, question: str, evidence: Sequence[Evidence]) -> Draft:
        sents = self._sentences(evidence)
        title = title_from_question(question)
        if not sents:
            return Draft(title, [], [], self.name, answerable=False)
        self._score(question, sents)
        # Off-topic evidence (a small corpus always returns *something*) must not become a section:
        # keep sentences within reach of the most relevant one.
        top = sorted((s.rel for s in sents), reverse=True)[:5]
        floor = 0.5 * sum(top) / len(top)  # robust to one sentence that merely restates the question
        # hedged and negative findings are worded away from the question, so they get a lower bar
        hedged = [s for s in sents if 0.8 * floor <= s.rel < floor and _LIMIT_CUES.search(s.text)]
        sents = [s for s in sents if s.rel >= floor]
        numbers = SourceNumbers(evidence)
        cite = lambda s: self._cited(s, numbers)  # noqa: E731

        sections: list[Section] = []
        intro = self._pick(
            [s for s in sents if s.role == "background" and not _OBJECTIVE.search(s.text)], 2, per_paper=1
        )
        n_papers = len({e.chunk.doc_id for e in evidence})
        sections.append(Section(title="Introduction", sentences=[cite(s) for s in intro]))

        # the conclusion is chosen before the body, so there is always one to end on
        closing = self._pick([s for s in sents if s.role == "conclusion" and not s.used], 2, per_paper=1)
        if not closing:
            closing = self._pick([s for s in sents if not s.used and s.role == "result"], 1, per_paper=1)

        body_pool = [s for s in sents if s.role in ("result", "conclusion", "method") and not s.used]
        body_pool.sort(key=lambda s: -s.rel)
        body_pool = body_pool[:40]
        limits_pool = [s for s in body_pool if _LIMIT_CUES.search(s.text)] + hedged
        themes = self._cluster([s for s in body_pool if s not in limits_pool or len(limits_pool) > 3])
        for members in themes:
            chosen = self._pick(members, 4, per_paper=2)
            if not chosen:
                continue
            heading = self._name(members, [m for t in themes if t is not members for m in t], question)
            chosen.sort(key=lambda s: (s.ev, s.position))  # a paper's sentences read in their own order
            sections.append(Section(title=heading, sentences=[cite(s) for s in chosen]))

        limits = self._pick([s for s in limits_pool if not s.used], 3, per_paper=1)
        limit_sents = [cite(s) for s in limits]
        if len({e.chunk.doc_id for e in evidence}) < 3:
            limit_sents.append(
                Sentence(
                    text="Few papers in the corpus address this question, so the evidence is thin.", kind="framing"
                )
            )
        if limit_sents:
            sections.append(Section(title="Limitations and Conflicting Evidence", sentences=limit_sents))

        if closing:
            sections.append(Section(title="Conclusion", sentences=[cite(s) for s in closing]))
        # written last, so it counts the papers the answer actually cites
        cited = len(numbers.sources)
        scope = f"{cited} of the {n_papers} papers" if cited < n_papers else f"{cited} papers"
        sections[0].sentences.append(
            Sentence(
                text=f"This briefing draws on {scope} retrieved for the question “{question.strip()}”.", kind="framing"
            )
        )
        return Draft(title, [s for s in sections if s.sentences], numbers.sources, self.name)

    # -- steps ---------------------------------------------------------------------------
    def _sentences(self, evidence: Sequence[Evidence]) -> list[_Sent]:
        out: list[_Sent] = []
        for i, ev in enumerate(evidence):
            for text, role, position in chunk_sentences(ev.chunk):
                words = len(text.split())
                if 6 <= words <= 70 and text[:1].isalnum():
                    out.append(_Sent(text=text, ev=i, role=role, position=position))
        return out[:160]

    def _score(self, question: str, sents: list[_Sent]) -> None:
        vectors = self.embedder.embed([question] + [s.text for s in sents])
        q = vectors[0]
        q_terms = {_stem(t) for t in _terms(question)}
        for s, v in zip(sents, vectors[1:], strict=True):
            terms = {_stem(t) for t in _terms(s.text)}
            overlap = len(q_terms & terms) / max(len(q_terms), 1)
            s.vec = v
            s.rel = 0.75 * float(v @ q) + 0.25 * overlap

    def _pick(self, pool: list[_Sent], n: int, per_paper: int) -> list[_Sent]:
        """Maximal marginal relevance: relevant, but not repeating what was already chosen."""
        chosen: list[_Sent] = []
        counts: Counter[int] = Counter()
        candidates = [s for s in pool if not s.used]
        while candidates and len(chosen) < n:

            def gain(s: _Sent) -> float:
                redundancy = max((float(s.vec @ c.vec) for c in chosen), default=0.0)  # type: ignore[operator]
                return s.rel - 0.6 * max(redundancy - 0.3, 0.0)

            best = max(candidates, key=gain)
            candidates.remove(best)
            if counts[best.ev] >= per_paper or (chosen and gain(best) < 0.5 * chosen[0].rel):
                continue
            best.used = True
            counts[best.ev] += 1
            chosen.append(best)
        return chosen

    def _cluster(self, pool: list[_Sent]) -> list[list[_Sent]]:
        """Spherical k-means with a deterministic farthest-point start; k grows with the evidence."""
        if not pool:
            return []
        n_papers = len({s.ev for s in pool})
        k = max(1, min(self.settings.answer.max_sections, len(pool) // 5, math.ceil(n_papers / 2)))
        X = np.vstack([s.vec for s in pool])  # type: ignore[misc]
        centers = [X[0]]  # pool is sorted by relevance: the top sentence seeds the first theme
        for _ in range(1, k):
            dist = 1 - np.max(X @ np.vstack(centers).T, axis=1)
            centers.append(X[int(np.argmax(dist))])
        C = np.vstack(centers)
        for _ in range(10):
            labels = np.argmax(X @ C.T, axis=1)
            for j in range(k):
                members = X[labels == j]
                if len(members):
                    c = members.mean(axis=0)
                    C[j] = c / max(float(np.linalg.norm(c)), 1e-9)
        groups = [[s for s, lab in zip(pool, labels, strict=True) if lab == j] for j in range(k)]
        # a theme needs two papers behind it; fold thinner ones into their nearest theme
        big = [j for j, g in enumerate(groups) if len({s.ev for s in g}) >= 2]
        if big:
            for j, g in enumerate(groups):
                if j not in big:
                    for s in g:
                        groups[max(big, key=lambda b: float(s.vec @ C[b]))].append(s)  # type: ignore[operator]
            groups = [groups[j] for j in big]
        groups = [g for g in groups if g]
        groups.sort(key=lambda g: -max(s.rel for s in g))
        return groups

    @staticmethod
    def _name(members: list[_Sent], others: list[_Sent], question: str) -> str:
        """A heading from the theme's distinctive words and phrases (tf-idf against the other themes)."""
        forms: dict[str, Counter[str]] = {}

        def grams(sents: list[_Sent]) -> Counter[str]:
            counts: Counter[str] = Counter()
            for s in sents:
                tokens = _WORD.findall(s.text)
                keep = [w.lower() not in _STOP and len(w) > 2 for w in tokens]
                words = [w.lower() for w, k in zip(tokens, keep, strict=True) if k]
                for w, k in zip(tokens, keep, strict=True):
                    if k:
                        forms.setdefault(w.lower(), Counter())[w] += 1
                # phrases only from words that stand side by side in the sentence ("bone density", not
                # "changes gut" from "changes in gut")
                phrases = {
                    f"{a.lower()} {b.lower()}"
                    for (a, ka), (b, kb) in itertools.pairwise(zip(tokens, keep, strict=True))
                    if ka and kb
                }
                counts.update(set(words) | phrases)
            return counts

        mine, theirs = grams(members), grams(others)
        q_terms = {_stem(t) for t in _terms(question)}
        scored = []
        for gram, tf in mine.items():
            words = gram.split()
            if (tf < 2 and len(members) > 2) or any(w in _GENERIC or w.endswith("ly") for w in words):
                continue
            if all(_stem(w) in q_terms for w in words):
                continue  # every section is about the question; name what sets this one apart
            df = theirs.get(gram, 0)
            weight = tf * math.log((1 + len(others) + len(members)) / (1 + df)) * (1.5 if len(words) > 1 else 1.0)
            scored.append((weight, gram))
        scored.sort(key=lambda ws: (-ws[0], ws[1]))
        picked: list[str] = []
        for _, gram in scored:
            if any({_stem(w) for w in gram.split()} & {_stem(w) for w in p.split()} for p in picked):
                continue
            if picked and (" " in gram) != (" " in picked[0]):
                continue  # "Bone Density and Fracture Risk" or "Calcium and Falls", not a mix
            picked.append(gram)
            if len(picked) == 2:
                break
        if not picked:
            return "Other Findings"

        def show(word: str) -> str:
            form = forms.get(word, Counter({word: 1})).most_common(1)[0][0]
            if any(c.isupper() for c in form[1:]) or any(c.isdigit() for c in form):
                return form  # acronyms and names as written: NSAIDs, BMD, IL-6
            return form[:1].upper() + form[1:]

        return " and ".join(" ".join(show(w) for w in p.split()) for p in picked)

    @staticmethod
    def _cited(s: _Sent, numbers: SourceNumbers) -> Sentence:
        n = numbers.number(s.ev)
        return Sentence(text=with_citation(s.text, n), citations=[n])


def _titlecase(phrase: str) -> str:
    return " ".join(
        w if (w.isupper() or any(c.isdigit() for c in w)) else w[:1].upper() + w[1:] for w in phrase.split()
    )


class StreamRenumber:
    """Passes streamed model text on with ``[S3]`` keys already renumbered to ``[n]``.

    Numbers follow first appearance, exactly as :func:`parse_llm_markdown` assigns them.
    """

    def __init__(self, evidence: Sequence[Evidence], sink: Callable[[str], None]) -> None:
        self.numbers = SourceNumbers(evidence)
        self.n_evidence = len(evidence)
        self.sink = sink
        self._pending = ""

    def feed(self, piece: str) -> None:
        self._pending += piece
        out = []
        while self._pending:
            start = self._pending.find("[")
            if start < 0:
                out.append(self._pending)
                self._pending = ""
                break
            out.append(self._pending[:start])
            end = self._pending.find("]", start)
            if end < 0:
                if len(self._pending) - start > 40:  # not a citation after all
                    out.append(self._pending)
                    self._pending = ""
                else:
                    self._pending = self._pending[start:]
                break
            token = self._pending[start : end + 1]
            self._pending = self._pending[end + 1 :]
            match = _KEY.fullmatch(token)
            if match:
                keys = [k for k in _expand_keys(match.group(1)) if 1 <= k <= self.n_evidence]
                out.append("".join(f"[{self.numbers.number(k - 1)}]" for k in keys))
            else:
                out.append(token)
        text = "".join(out)
        if text:
            self.sink(text)

    def flush(self) -> None:
        if self._pending:
            self.sink(self._pending)
            self._pending = ""
