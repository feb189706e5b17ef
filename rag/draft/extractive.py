"""The offline extractive drafter: a briefing built from the sources' own sentences, no LLM.

The evidence is split into sentences; each gets a rhetorical role (background, method, result,
conclusion; :mod:`rag.lang.roles`) and a relevance to the question; result and conclusion
sentences are clustered into themes, each named from its distinctive terms and written as its most
informative, non-redundant sentences; hedged or negative findings make a limitations section; the
papers' own background and conclusion sentences open and close the answer. Every sentence is a
source's own sentence with its citation.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.lang.asks import answer_shape
from rag.lang.citations import SourceNumbers, with_citation
from rag.lang.lexicon import WORD, is_topic_word, overlap, stem, title_from_question, title_word, topic_stems
from rag.lang.roles import LIMIT_CUES, OBJECTIVE, chunk_sentences
from rag.settings import Settings
from rag.types import Draft, Embedder, Evidence, Section, Sentence

_MEANING = 0.75  # a sentence's relevance: its embedding similarity to the question, plus a quarter shared words

# Words that name no theme of their own: a heading "Study and Outcome" says nothing.
_GENERIC = frozenset(
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


class ExtractiveDrafter:
    """The offline drafter: a briefing built from the sources' own sentences, no LLM."""

    name = "extractive"

    def __init__(self, embedder: Embedder, settings: Settings) -> None:
        self.embedder, self.settings = embedder, settings

    def draft_sync(self, question: str, evidence: Sequence[Evidence]) -> Draft:
        title = title_from_question(question)
        sents = self._sentences(evidence)
        if not sents:
            return Draft(title=title, drafter=self.name, answerable=False)
        self._score(question, sents)
        sents, hedged = self._on_topic(sents)
        numbers = SourceNumbers(evidence)
        intro = self._pick([s for s in sents if s.role == "background" and not OBJECTIVE.search(s.text)], 2, 1)
        closing = self._closing(sents)  # chosen before the body, so there is always one to end on
        sections = [self._section("Introduction", intro, numbers)]
        body, limits_pool = self._body_pools(sents, hedged)
        sections += self._themes(body, question, numbers)
        limits = self._limitations(limits_pool, evidence, numbers)
        if limits.sentences:
            sections.append(limits)
        if closing:
            sections.append(self._section("Conclusion", closing, numbers))
        # written last, so it counts the papers the answer actually cites
        n_papers = len({e.chunk.doc_id for e in evidence})
        cited = len(numbers.sources)
        scope = f"{cited} of the {n_papers} papers" if cited < n_papers else f"{cited} papers"
        framing = f"This briefing draws on {scope} retrieved for the question “{question.strip()}”."
        sections[0].sentences.append(Sentence(text=framing, kind="framing"))
        sections = [s for s in sections if s.sentences]
        return Draft(title=title, sections=sections, sources=numbers.sources, drafter=self.name)

    def _on_topic(self, sents: list[_Sent]) -> tuple[list[_Sent], list[_Sent]]:
        """Sentences within reach of the most relevant ones, and hedged ones just below that bar.

        Off-topic evidence (a small corpus always returns *something*) must not become a section.
        """
        top = sorted((s.rel for s in sents), reverse=True)[:5]
        floor = 0.5 * sum(top) / len(top)  # robust to one sentence that merely restates the question
        # hedged and negative findings are worded away from the question, so they get a lower bar
        hedged = [s for s in sents if 0.8 * floor <= s.rel < floor and LIMIT_CUES.search(s.text)]
        return [s for s in sents if s.rel >= floor], hedged

    def _closing(self, sents: list[_Sent]) -> list[_Sent]:
        closing = self._pick([s for s in sents if s.role == "conclusion" and not s.used], 2, per_paper=1)
        return closing or self._pick([s for s in sents if not s.used and s.role == "result"], 1, per_paper=1)

    @staticmethod
    def _body_pools(sents: list[_Sent], hedged: list[_Sent]) -> tuple[list[_Sent], list[_Sent]]:
        """The most relevant findings for themes, and the limitations pool (kept out of themes unless plenty)."""
        pool = sorted(
            (s for s in sents if s.role in ("result", "conclusion", "method") and not s.used), key=lambda s: -s.rel
        )
        pool = pool[:40]
        limits = [s for s in pool if LIMIT_CUES.search(s.text)] + hedged
        return [s for s in pool if s not in limits or len(limits) > 3], limits

    def _themes(self, pool: list[_Sent], question: str, numbers: SourceNumbers) -> list[Section]:
        themes = self._cluster(pool)
        sections = []
        for members in themes:
            chosen = self._pick(members, 4, per_paper=2)
            if not chosen:
                continue
            heading = self._name(members, [m for t in themes if t is not members for m in t], question)
            chosen.sort(key=lambda s: (s.ev, s.position))  # a paper's sentences read in their own order
            sections.append(self._section(heading, chosen, numbers))
        return sections

    def _limitations(self, pool: list[_Sent], evidence: Sequence[Evidence], numbers: SourceNumbers) -> Section:
        section = self._section(
            "Limitations and Conflicting Evidence", self._pick([s for s in pool if not s.used], 3, 1), numbers
        )
        if len({e.chunk.doc_id for e in evidence}) < 3:
            thin = "Few papers in the corpus address this question, so the evidence is thin."
            section.sentences.append(Sentence(text=thin, kind="framing"))
        return section

    @staticmethod
    def _section(title: str, chosen: list[_Sent], numbers: SourceNumbers) -> Section:
        sentences = []
        for s in chosen:
            n = numbers.number(s.ev)
            sentences.append(Sentence(text=with_citation(s.text, n), citations=[n]))
        return Section(title=title, sentences=sentences)

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
        q_terms = topic_stems(question)
        for s, v in zip(sents, vectors[1:], strict=True):
            shared = overlap(q_terms, topic_stems(s.text))
            s.vec = v
            s.rel = _MEANING * float(v @ q) + (1 - _MEANING) * shared
        shape = answer_shape(question)
        if shape is not None:  # "24 participants" answers "How many participants …?" however its other words score
            top = max(s.rel for s in sents)
            for s in sents:
                if shape.search(s.text):
                    s.rel = top

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
        mine, theirs = _grams(members, forms), _grams(others, forms)
        q_terms = topic_stems(question)
        scored = []
        for gram, tf in mine.items():
            words = gram.split()
            if (tf < 2 and len(members) > 2) or any(w in _GENERIC or w.endswith("ly") for w in words):
                continue
            if all(stem(w) in q_terms for w in words):
                continue  # every section is about the question; name what sets this one apart
            df = theirs.get(gram, 0)
            weight = tf * math.log((1 + len(others) + len(members)) / (1 + df)) * (1.5 if len(words) > 1 else 1.0)
            scored.append((weight, gram))
        scored.sort(key=lambda ws: (-ws[0], ws[1]))
        picked: list[str] = []
        for _, gram in scored:
            if any({stem(w) for w in gram.split()} & {stem(w) for w in p.split()} for p in picked):
                continue
            if picked and (" " in gram) != (" " in picked[0]):
                continue  # "Bone Density and Fracture Risk" or "Calcium and Falls", not a mix
            picked.append(gram)
            if len(picked) == 2:
                break
        if not picked:
            return "Other Findings"

        def show(word: str) -> str:  # the word as the sources most often write it
            return title_word(forms.get(word, Counter({word: 1})).most_common(1)[0][0])

        return " and ".join(" ".join(show(w) for w in p.split()) for p in picked)


def _grams(sents: list[_Sent], forms: dict[str, Counter[str]]) -> Counter[str]:
    """In how many sentences each topic word and two-word phrase occurs; adds each word's written forms to ``forms``."""
    counts: Counter[str] = Counter()
    for s in sents:
        tokens = WORD.findall(s.text)
        keep = [is_topic_word(w) for w in tokens]
        for w, k in zip(tokens, keep, strict=True):
            if k:
                forms.setdefault(w.lower(), Counter())[w] += 1
        words = {w.lower() for w, k in zip(tokens, keep, strict=True) if k}
        # phrases only from words that stand side by side in the sentence ("bone density", not
        # "changes gut" from "changes in gut")
        pairs = itertools.pairwise(zip(tokens, keep, strict=True))
        phrases = {f"{a.lower()} {b.lower()}" for (a, ka), (b, kb) in pairs if ka and kb}
        counts.update(words | phrases)
    return counts
