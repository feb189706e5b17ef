"""Checking an answer: every cited sentence against the evidence it cites, with receipts and repairs.

For each sentence of a draft: its citations are resolved to evidence chunks; a judge scores
whether the concatenation of the cited chunks supports it (ALCE's citation recall) and whether
each citation is needed (citation precision: a citation is irrelevant when it alone does not
support the sentence and the others do without it); out-of-range citations and citation-worthy
sentences without a citation are flagged. Each verdict comes with the best supporting quote and
its character span in the chunk. Repair (``strict``) re-cites an unsupported sentence to the
evidence that supports it, or removes it; ``flag`` keeps it marked; ``off`` skips the check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.check.base import Judge, Support
from rag.check.topic import OnQuestion
from rag.lang.citations import source_for, strip_markers, with_citation
from rag.lang.furniture import is_boilerplate
from rag.types import Evidence, GroundingReport, Section, Sentence, SentenceVerdict, Source

_MIN_CLAIM_WORDS = 5  # shorter sentences are connectives or fragments, not claims
_SHOWN = 120  # characters of a sentence quoted in a repair note
_MOST_ATTRIBUTED = 2  # papers a claim is cited to after the fact: the best, and one more that also supports it
_ASIDE = {"boilerplate": "page furniture or boilerplate, not a finding", "off_question": "not on the question"}


def needs_citation(sentence: Sentence) -> bool:
    """Whether a sentence states something a source must back: as in ALCE, every sentence of
    substance does; only our own framing sentences and fragments do not."""
    if sentence.kind == "framing":
        return False
    return len(strip_markers(sentence.text).split()) >= _MIN_CLAIM_WORDS


def _chunks_of(sources: list[Source], evidence: Sequence[Evidence]) -> dict[int, list[Evidence]]:
    """Source number → the evidence chunks it stands for (the cited ones, else all of the paper's)."""
    out: dict[int, list[Evidence]] = {}
    for s in sources:
        cited = [e for e in evidence if e.chunk.doc_id == s.doc_id and e.chunk.chunk_id in s.chunk_ids]
        out[s.number] = cited or [e for e in evidence if e.chunk.doc_id == s.doc_id]
    return out


def _passages(
    numbers_: list[int], chunks_of: dict[int, list[Evidence]]
) -> tuple[list[str], list[tuple[int, Evidence]]]:
    passages, owners = [], []
    for n in numbers_:
        for ev in chunks_of.get(n, []):
            passages.append(ev.chunk.text)
            owners.append((n, ev))
    return passages, owners


def cited_claims(
    sections: list[Section], sources: list[Source], evidence: Sequence[Evidence]
) -> list[tuple[str, list[int], list[str]]]:
    """Every cited sentence with its valid citations and the passages they point at."""
    chunks_of = _chunks_of(sources, evidence)
    items = []
    for section in sections:
        for sentence in section.sentences:
            valid = [n for n in sentence.citations if n in chunks_of]
            if valid:
                items.append((strip_markers(sentence.text), valid, _passages(valid, chunks_of)[0]))
    return items


def claims_to_check(
    sections: list[Section], sources: list[Source], evidence: Sequence[Evidence]
) -> list[tuple[str, list[str]]]:
    """Every cited sentence with the passages its valid citations point at (what a judge is asked)."""
    return [(claim, passages) for claim, _, passages in cited_claims(sections, sources, evidence)]


@dataclass
class _Tally:
    claims: int = 0
    supported: int = 0
    uncited: int = 0  # after repair
    uncited_drafted: int = 0
    citations: int = 0
    relevant: int = 0
    invalid: int = 0
    aside: int = 0  # claims set aside as boilerplate or off the question

    def fill(self, report: GroundingReport) -> None:
        report.citation_recall = round(self.supported / self.claims, 4) if self.claims else None
        report.citation_precision = (
            round(self.relevant / max(self.citations - self.invalid, 1), 4) if self.citations else None
        )
        report.uncited_rate = round(self.uncited / self.claims, 4) if self.claims else None
        report.uncited_drafted_rate = round(self.uncited_drafted / self.claims, 4) if self.claims else None
        report.invalid_citation_rate = round(self.invalid / self.citations, 4) if self.citations else None
        report.off_question_rate = round(self.aside / self.claims, 4) if self.claims else None


class _Checker:
    """One answer's check: the judge, the evidence, the running tally and the receipt."""

    def __init__(
        self, sources: list[Source], evidence: Sequence[Evidence], judge: Judge, mode: str, cut: float | None = None
    ) -> None:
        self.sources, self.evidence, self.judge, self.mode = sources, evidence, judge, mode
        self.cut = cut  # the least closeness to the question a claim needs (None: not checked)
        self.chunks_of = _chunks_of(sources, evidence)
        # a retracted paper supports nothing: its citations stay visible, with a warning, but never count
        self.retracted = {s.number for s in sources if s.retracted}
        self.report = GroundingReport(judge=judge.name, mode=mode)
        self.tally = _Tally()

    def sentence(self, section: Section, sentence: Sentence, on_question: float | None = None) -> Sentence | None:
        """The sentence as kept (possibly repaired or marked), or None when removed; records its verdict
        (``on_question``: its closeness to the question)."""
        verdict = SentenceVerdict(
            section=section.title,
            sentence=sentence.text,
            citations=sentence.citations,
            verdict="no_claim",
            on_question=on_question,
        )
        self.report.sentences.append(verdict)
        bad = [n for n in sentence.citations if n not in self.chunks_of]
        worthy = needs_citation(sentence)
        self.tally.citations += len(sentence.citations)
        self.tally.invalid += len(bad)
        self.tally.claims += worthy
        if worthy and is_boilerplate(strip_markers(sentence.text)):
            return self._set_aside(section, sentence, verdict, "boilerplate")
        if worthy and on_question is not None and self.cut is not None and on_question < self.cut:
            return self._set_aside(section, sentence, verdict, "off_question")
        if bad:
            verdict.verdict = "invalid_citation"
        if not sentence.citations:
            return self._uncited(section, sentence, verdict) if worthy else sentence
        return self._judged(section, sentence, verdict, bad, worthy)

    def _uncited(self, section: Section, sentence: Sentence, verdict: SentenceVerdict) -> Sentence | None:
        """A claim the drafter left uncited: cited after the fact to the evidence that supports it (as ALCE and
        OpenScholar attribute), else flagged, or removed in ``strict``."""
        self.tally.uncited_drafted += 1
        cited = self._attribute(strip_markers(sentence.text), sentence, verdict, "cited")
        if cited is not None:
            self.tally.supported += 1
            self.report.changes.append(f"Cited after the fact: {cited.text[:_SHOWN]}")
            return cited
        self.tally.uncited += 1
        verdict.verdict = "uncited"
        if self.mode == "strict":
            verdict.action = "removed"
            self.report.changes.append(
                f"Removed an uncited, unsupported claim from “{section.title}”: {sentence.text[:_SHOWN]}"
            )
            return None
        verdict.action = "flagged"
        self.report.changes.append(f"Flagged a claim without citation: {sentence.text[:_SHOWN]}")
        return sentence.model_copy(update={"flagged": True})

    def _set_aside(self, section: Section, sentence: Sentence, verdict: SentenceVerdict, why: str) -> Sentence | None:
        """A claim that is packaging or off the question: its source's support is recorded, but it is not a
        supported claim; flagged with the reason, or removed in ``strict``."""
        self.tally.aside += 1
        passages, owners = _passages(self._valid(sentence), self.chunks_of)
        if passages:
            _receipt(verdict, self.judge.support(strip_markers(sentence.text), passages), passages, owners)
        verdict.verdict, note = why, _ASIDE[why]
        if self.mode == "strict":
            verdict.action = "removed"
            self.report.changes.append(f"Removed from “{section.title}” ({note}): {sentence.text[:_SHOWN]}")
            return None
        verdict.action = "flagged"
        self.report.changes.append(f"Flagged ({note}): {sentence.text[:_SHOWN]}")
        return sentence.model_copy(update={"flagged": True, "warning": note})

    def _judged(
        self, section: Section, sentence: Sentence, verdict: SentenceVerdict, bad: list[int], worthy: bool
    ) -> Sentence | None:
        claim = strip_markers(sentence.text)
        valid = self._valid(sentence)
        sentence = self._warn_retracted(sentence, verdict)
        passages, owners = _passages(valid, self.chunks_of)
        result = self.judge.support(claim, passages) if passages else Support(0.0, 0, (0, 0))
        verdict.score = round(result.score, 4)
        if passages:
            _receipt(verdict, result, passages, owners)
        if passages and result.supported(self.judge.threshold):
            self.tally.supported += worthy
            verdict.verdict = "supported" if not bad else "invalid_citation"
            self.tally.relevant += self._relevant_citations(claim, valid)
            return _drop_invalid(sentence, bad) if bad and self.mode == "strict" else sentence
        verdict.verdict = "unsupported" if not bad else "invalid_citation"
        if self.mode != "strict":
            verdict.action = "flagged"
            return sentence.model_copy(update={"flagged": True})
        repaired = self._recite(claim, sentence, verdict)
        if repaired is not None:
            self.tally.supported += worthy
            return repaired
        verdict.action = "removed"
        self.report.changes.append(f"Removed an unsupported sentence from “{section.title}”: {sentence.text[:_SHOWN]}")
        return None

    def _valid(self, sentence: Sentence) -> list[int]:
        """The sentence's citations that point at a source, retracted ones left out (they support nothing)."""
        return [n for n in sentence.citations if n in self.chunks_of and n not in self.retracted]

    def _warn_retracted(self, sentence: Sentence, verdict: SentenceVerdict) -> Sentence:
        cited = [n for n in sentence.citations if n in self.retracted]
        if not cited:
            return sentence
        marks = "".join(f"[{n}]" for n in cited)
        verdict.warning = f"cites retracted {marks}"
        self.report.changes.append(f"Warned: cites the retracted paper {marks}: {sentence.text[:_SHOWN]}")
        return sentence.model_copy(update={"warning": f"cites a retracted paper {marks}"})

    def _relevant_citations(self, claim: str, valid: list[int]) -> int:
        if len(valid) == 1:
            return 1
        count = 0
        for n in valid:
            alone = self.judge.support(claim, _passages([n], self.chunks_of)[0]).supported(self.judge.threshold)
            others = [m for m in valid if m != n]
            without = self.judge.support(claim, _passages(others, self.chunks_of)[0]).supported(self.judge.threshold)
            count += int(alone or not without)  # irrelevant only when it adds nothing the others lack
        return count

    def _recite(self, claim: str, sentence: Sentence, verdict: SentenceVerdict) -> Sentence | None:
        """Point an unsupported sentence at the evidence that supports it best, if any does."""
        repaired = self._attribute(claim, sentence, verdict, "recited")
        if repaired is not None:
            self.report.changes.append(f"Re-cited to {_marks(repaired.citations)}: {repaired.text[:_SHOWN]}")
        return repaired

    def _attribute(self, claim: str, sentence: Sentence, verdict: SentenceVerdict, action: str) -> Sentence | None:
        """The sentence cited to the evidence chunk that supports it best and, from another paper, a second one
        that supports it too; None when no chunk does. The verdict's receipt is the best one's."""
        candidates = [e for e in self.evidence if not e.chunk.retracted]
        found: list[tuple[Evidence, Support]] = []
        for _ in range(_MOST_ATTRIBUTED):
            if not candidates:
                break
            result = self.judge.support(claim, [e.chunk.text for e in candidates])
            if not result.supported(self.judge.threshold):
                break
            ev = candidates[result.passage]
            found.append((ev, result))
            candidates = [e for e in candidates if e.chunk.doc_id != ev.chunk.doc_id]
        if not found:
            return None
        numbers_ = [source_for(self.sources, ev.chunk).number for ev, _ in found]
        text = with_citation(strip_markers(sentence.text), *numbers_)
        (ev, result), number = found[0], numbers_[0]
        verdict.verdict, verdict.action = "supported", action
        verdict.best_source, verdict.chunk_id, verdict.score = number, ev.chunk.chunk_id, round(result.score, 4)
        verdict.page_start, verdict.page_end = ev.chunk.page_start, ev.chunk.page_end
        verdict.quote = ev.chunk.text[result.span[0] : result.span[1]]
        verdict.quote_span = result.span
        return sentence.model_copy(update={"text": text, "citations": numbers_, "warning": ""})


def _receipt(
    verdict: SentenceVerdict, result: Support, passages: list[str], owners: list[tuple[int, Evidence]]
) -> None:
    """The verdict's score and best quote: which source, chunk, pages and span."""
    owner, ev = owners[result.passage]
    verdict.score = round(result.score, 4)
    verdict.best_source, verdict.chunk_id = owner, ev.chunk.chunk_id
    verdict.page_start, verdict.page_end = ev.chunk.page_start, ev.chunk.page_end
    verdict.quote = passages[result.passage][result.span[0] : result.span[1]]
    verdict.quote_span = result.span


def _marks(numbers_: list[int]) -> str:
    return "".join(f"[{n}]" for n in numbers_)


def _drop_invalid(sentence: Sentence, bad: list[int]) -> Sentence:
    text = sentence.text
    for n in bad:
        text = text.replace(f"[{n}]", "")
    return sentence.model_copy(
        update={
            "text": re.sub(r"\s+([.!?])$", r"\1", text.strip()),
            "citations": [c for c in sentence.citations if c not in bad],
        }
    )


def check(
    sections: list[Section],
    sources: list[Source],
    evidence: Sequence[Evidence],
    judge: Judge,
    mode: str = "flag",
    question: str = "",
    on_question: OnQuestion | None = None,
) -> tuple[list[Section], list[Source], GroundingReport]:
    """Verify every sentence; returns the (repaired) sections and sources, and the receipt. With a
    ``question`` and ``on_question``, claims off the question are set aside too."""
    if mode == "off":
        return sections, sources, GroundingReport(judge=judge.name, mode=mode)
    checker = _Checker(sources, evidence, judge, mode, on_question.cut if on_question else None)
    fits = _fits(sections, question, on_question)
    out_sections: list[Section] = []
    for i, section in enumerate(sections):
        kept = [
            s
            for j, sentence in enumerate(section.sentences)
            if (s := checker.sentence(section, sentence, fits.get((i, j)))) is not None
        ]
        if kept:
            out_sections.append(section.model_copy(update={"sentences": kept}))
    checker.tally.fill(checker.report)
    return out_sections, sources, checker.report


def _fits(sections: list[Section], question: str, on_question: OnQuestion | None) -> dict[tuple[int, int], float]:
    """(section, sentence) → closeness to the question, for the claims (each with the sentence before it, which
    :class:`OnQuestion` reads with a claim that points back)."""
    if on_question is None or not question.strip():
        return {}
    where, pairs = [], []
    for i, section in enumerate(sections):
        for j, sentence in enumerate(section.sentences):
            if needs_citation(sentence):
                prev = strip_markers(section.sentences[j - 1].text) if j else ""
                where.append((i, j))
                pairs.append((prev, strip_markers(sentence.text)))
    return dict(zip(where, on_question.scores(question, pairs), strict=True))
