"""Reading scientific findings: negation and direction, poles, effect and null-result cues, p-values,
and the per-paper stance features built from them.

Shared by the grounding checker (is a claim contradicted by what it cites?) and the consensus meter
(where does a paper stand on the question?), so both read findings the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.lang.asks import PAIR_FEATURES, pair_features
from rag.lang.lexicon import WORD, content_stems, overlap
from rag.lang.roles import chunk_sentences
from rag.types import Chunk, Embedder, Evidence

NEGATION = re.compile(
    r"\b(not|no|never|none|neither|nor|without|fail(?:s|ed)? to|lack(?:s|ed)?|absence of|unable|cannot|"
    r"does not|did not|do not|is not|are not|was not|were not|n't)\b",
    re.IGNORECASE,
)
UP = re.compile(
    r"\b(increas\w*|rais\w*|elevat\w*|higher|more|greater|enhanc\w*|improv\w*|promot\w*|induc\w*|activat\w*|"
    r"upregulat\w*|up-regulat\w*|accelerat\w*|stimulat\w*|gain\w*|rise|rises|rising|boost\w*|augment\w*|"
    r"facilitat\w*|amplif\w*|potentiat\w*|exacerbat\w*|worsen\w*|accurate|effective|efficient|beneficial|"
    r"positive(?:ly)?|strong(?:er|ly)?|longer|larger|faster|sufficient|required|necessary|essential)\b",
    re.IGNORECASE,
)
DOWN = re.compile(
    r"\b(decreas\w*|reduc\w*|lower\w*|less|fewer|diminish\w*|inhibit\w*|suppress\w*|impair\w*|attenuat\w*|"
    r"downregulat\w*|down-regulat\w*|declin\w*|prevent\w*|block\w*|loss|lose|drop\w*|imped\w*|abolish\w*|"
    r"abrogat\w*|repress\w*|hinder\w*|limit\w*|inaccurate|ineffective|inefficient|harmful|detrimental|"
    r"negative(?:ly)?|weak(?:er|ly)?|shorter|smaller|slower|insufficient|dispensable|unnecessary)\b",
    re.IGNORECASE,
)


def direction(text: str) -> int:
    up, down = len(UP.findall(text)), len(DOWN.findall(text))
    return (up > down) - (down > up)


# Opposite poles along one axis each (amount, outcome, action, abundance, necessity, susceptibility,
# size/speed, capability, sign, sex, age). A claim that takes a pole its cited sentence never takes —
# worse where the sentence says better, scarce where it says abundant — has usually turned the
# finding round; this is how most contradicting claims differ from their source. Each pattern must
# match a whole word: a stem is spelled out with its endings where a bare prefix would catch
# unrelated words ("more" / "moreover", "men" / "mental", "can" / "cancer", "promote" / "promoter").
_POLES = [
    (
        r"increas\w*|rais(?:e|es|ed|ing)|elevat\w*|higher|greater|rise[sn]?|rising|rose|boost\w*|augment\w*|"
        r"up-?regulat\w*|amplif\w*|gain(?:s|ed|ing)?|more|exceed\w*",
        r"decreas\w*|reduc\w*|lower(?:s|ed|ing)?|less|fewer|diminish\w*|declin\w*|drop(?:s|ped|ping)?|"
        r"down-?regulat\w*|loss(?:es)?|los(?:e|es|ing)|lost|deplet\w*|shr[iau]nk\w*",
    ),
    (
        r"improv\w*|rescu\w*|restor\w*|benefi\w*|better|best|superior|favou?rabl[ey]|saf(?:e|er|ely)|"
        r"success\w*|alleviat\w*|ameliorat\w*|reliev\w*|relief",
        r"worsen\w*|exacerbat\w*|impair\w*|harm(?:s|ed|ful)?|detriment\w*|worse|worst|inferior|"
        r"unfavou?rabl[ey]|advers\w*|toxic\w*|fail(?:s|ed|ing|ure|ures)?|aggravat\w*|deteriorat\w*",
    ),
    (
        r"activat\w*|induc(?:e|es|ed|ing|tion)|promot(?:e|es|ed|ing|ion)|stimulat\w*|enhanc\w*|encourag\w*|"
        r"facilitat\w*|trigger\w*|caus(?:e|es|ed|ing)|driv(?:e|es|ing|en)|drove|potentiat\w*|accelerat\w*|"
        r"sensiti[sz](?:e|es|ed|ing|ation)",
        r"inhibit\w*|suppress\w*|prevent\w*|block(?:s|ed|ing|ade)?|repress\w*|attenuat\w*|abolish\w*|"
        r"abrogat\w*|imped(?:e|es|ed|ing)|hinder\w*|slow(?:s|ed|ing)?|delay(?:s|ed|ing)?|"
        r"protect(?:s|ed|ing|ive|ion)?|antagoni[sz](?:e|es|ed|ing)|desensiti[sz]\w*",
    ),
    (
        r"abundan\w*|high|many|frequent(?:ly)?|common(?:ly)?|prevalen\w*|rich|presence|widespread|often",
        r"scarc\w*|low|few|rare(?:ly)?|infrequent(?:ly)?|uncommon|absent|absence|lack(?:s|ed|ing)?|seldom|sparse\w*",
    ),
    (
        r"requir(?:e|es|ed|ing|ement)|necessary|necessity|essential|critical|crucial|indispensabl[ey]|need(?:s|ed)?",
        r"dispensabl[ey]|unnecessary|redundant",
    ),
    (r"sensitiv\w*|susceptib\w*|vulnerab\w*|prone", r"resistan\w*|resist(?:s|ed)?|toleran\w*|refractory"),
    (
        r"long|longer|larg(?:e|er|est)|big|bigger|wide|wider|fast|faster|rapid(?:ly)?|early",
        r"short|shorter|small|smaller|narrow(?:er)?|slower|late",
    ),
    (
        r"capabl[ey]|effective(?:ly|ness)?|efficac\w*|accurat(?:e|ely)|efficien\w*|sufficient(?:ly)?|"
        r"reliabl[ey]|valid",
        r"incapabl[ey]|unable|cannot|ineffective(?:ly|ness)?|inefficac\w*|inaccura\w*|inefficien\w*|"
        r"insufficien\w*|unreliabl[ey]|invalid|unspecific|nonspecific",
    ),
    (r"positive(?:ly)?|agonists?|pro-\w+", r"negative(?:ly)?|antagonists?|anti-\w+"),
    (r"males?|men", r"females?|women"),
    (r"adults?|adulthood", r"child|children|childhood|infants?|pediatric|paediatric"),
]
_POLE_RES = [(re.compile(rf"(?:{a})", re.IGNORECASE), re.compile(rf"(?:{b})", re.IGNORECASE)) for a, b in _POLES]
_CANNOT = re.compile(r"\bcan(?:'|’)?t\b|\bcan not\b", re.IGNORECASE)


def poles(text: str) -> set[tuple[int, int]]:
    """The (axis, sign) poles the words of ``text`` take.

    >>> sorted(poles("Statins lower LDL but cannot prevent dementia in men."))
    [(0, -1), (2, -1), (7, -1), (9, 1)]
    """
    out: set[tuple[int, int]] = set()
    for word in WORD.findall(_CANNOT.sub("cannot", text)):
        for axis, (up, down) in enumerate(_POLE_RES):
            if down.fullmatch(word):
                out.add((axis, -1))
            elif up.fullmatch(word):
                out.add((axis, 1))
    return out


def pole_clash(claim: str, sentence: str) -> tuple[int, int, int]:
    """(claim poles the sentence never takes, of those the ones it takes the opposite of, claim poles)."""
    cp, sp = poles(claim), poles(sentence)
    unmatched = [(k, s) for k, s in cp if (k, s) not in sp]
    return len(unmatched), sum((k, -s) in sp for k, s in unmatched), len(cp)


STANCE_FEATURES = [
    "relevance",
    "coverage",
    "null_result",
    "effect",
    "negation",
    "direction_conflict",
    "direction_agree",
    "hedge",
    "paper_null_result",
    "paper_effect",
    "question_negated",
    "question_compares",
    "p_significant",
    "p_not_significant",
    "last_null_result",
    "last_effect",
]

_NULL = re.compile(
    r"\b(no (?:\w+ )?(?:difference|differences|effect|effects|association|associations|correlation|relationship|"
    r"change|changes|benefit|improvement|advantage|impact|influence|role|evidence|increase|decrease|reduction)|"
    r"not (?:statistically )?significant(?:ly)?|non-?significant(?:ly)?|did not (?:\w+ )?(?:differ|change|improve|"
    r"affect|reduce|increase|decrease|correlate|predict|influence|alter|show|reach|find|lead)|"
    r"(?:was|were|is|are) not (?:\w+ )?(?:associated|related|correlated|different|predictive|affected|improved|"
    r"increased|reduced|changed|effective|superior|better)|unrelated|similar|comparable|unchanged|unaffected|"
    r"failed to|neither|equivalent|no longer)\b",
    re.IGNORECASE,
)
_EFFECT = re.compile(
    r"\b(significant(?:ly)?|p\s?[<≤]\s?0?\.0[0-5]\d*|associated with|correlated with|predict(?:s|ed|ive|or|ors)|"
    r"risk factor|increased risk|higher risk|odds ratio|hazard ratio|effective(?:ly)?|efficacy|improved|superior|"
    r"beneficial|benefit(?:s|ed)?|reduced|increased|decreased|elevated|enhanced|impaired|resulted in|led to|"
    r"caused|induced|promoted|demonstrated|confirmed|showed that|indicate[sd]? that)\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(may|might|could|possibl[ey]|potential(?:ly)?|unclear|uncertain|remains?|further (?:studies|research|"
    r"investigation|trials)|warrant\w*|preliminary|limited|controversial|conflicting|inconclusive|needed|"
    r"insufficient|not (?:yet )?(?:known|clear|established))\b",
    re.IGNORECASE,
)
_COMPARES = re.compile(
    r"\b(than|versus|vs\.?|compared|comparison|differ\w*|better|worse|superior|inferior|more|less|equivalent)\b",
    re.IGNORECASE,
)
_P_VALUE = re.compile(r"\bp\s?(<|≤|<=|=|>|≥|>=)\s?(0?\.\d+|1(?:\.0+)?)", re.IGNORECASE)
_TOP_WEIGHTS = (0.5, 0.3, 0.2)


def p_values(text: str) -> tuple[int, int]:
    """(significant, not significant) p-values stated in ``text`` at the 0.05 level."""
    sig = nonsig = 0
    for op, value in _P_VALUE.findall(text):
        v = float(value)
        if (op in ("<", "≤", "<=") and v <= 0.05) or (op == "=" and v < 0.05):
            sig += 1
        elif (op in (">", "≥", ">=") and v >= 0.05) or (op == "=" and v >= 0.05):
            nonsig += 1
    return sig, nonsig


@dataclass
class PaperReading:
    """Features of one paper against the question, and the sentence that shows its stance."""

    features: np.ndarray
    relevance: float  # best sentence similarity to the question
    sentence: str
    chunk_id: str
    retrieval: float = 0.0  # best retrieval score of the paper's chunks (fused, higher is better)
    tests: np.ndarray = field(default_factory=lambda: np.zeros(len(PAIR_FEATURES)))  # does it test the question?


def read_paper(question: str, chunks: Sequence[Evidence], embedder: Embedder) -> PaperReading:
    """The stance features of one paper (its evidence chunks) toward ``question``."""
    sents: list[tuple[str, str, str]] = []  # (text, role, chunk_id)
    for ev in chunks:
        sents += [(t, role, ev.chunk.chunk_id) for t, role, _ in chunk_sentences(ev.chunk) if len(t.split()) >= 4]
    reading = read_findings(question, sents, embedder)
    if not reading.chunk_id and chunks:
        reading.chunk_id = chunks[0].chunk.chunk_id
    reading.retrieval = max((ev.score for ev in chunks), default=0.0)
    titles = list(dict.fromkeys(ev.chunk.title for ev in chunks if ev.chunk.title))  # a title names what is tested
    reading.tests = pair_features(question, [(t, "title") for t in titles] + [(t, role) for t, role, _ in sents])
    return reading


def read_passages(claim: str, passages: Sequence[str], embedder: Embedder) -> PaperReading:
    """:func:`read_paper` for plain passages (the checker's view of what a sentence cites)."""
    sents: list[tuple[str, str, str]] = []
    for p, text in enumerate(passages):
        chunk = Chunk(chunk_id=str(p), doc_id="", text=text, index=0, n_chunks=1, n_tokens=0, paper_hash="")
        sents += [(t, role, str(p)) for t, role, _ in chunk_sentences(chunk) if len(t.split()) >= 4]
    return read_findings(claim, sents, embedder)


def read_findings(question: str, sents: Sequence[tuple[str, str, str]], embedder: Embedder) -> PaperReading:
    """Stance features from ``(text, role, chunk_id)`` sentences toward ``question``."""
    if not sents:
        return PaperReading(np.zeros(len(STANCE_FEATURES)), 0.0, "", "")
    vecs = embedder.embed([question, *(s[0] for s in sents)])
    sims = vecs[1:] @ vecs[0]
    q_terms = content_stems(question)
    coverage = np.array([overlap(q_terms, content_stems(t)) for t, _, _ in sents])
    rel = sims + 0.5 * coverage
    findings = [i for i, (_, role, _) in enumerate(sents) if role in ("result", "conclusion")] or list(
        range(len(sents))
    )
    top = sorted(findings, key=lambda i: -rel[i])[: len(_TOP_WEIGHTS)]
    weights = np.array(_TOP_WEIGHTS[: len(top)]) / sum(_TOP_WEIGHTS[: len(top)])
    q_neg = bool(NEGATION.search(question))
    q_dir = direction(question)

    def cue(i: int) -> tuple[float, float, float, float, float, float]:
        text = sents[i][0]
        null = bool(_NULL.search(text))
        effect = bool(_EFFECT.search(text)) and not null
        neg = bool(NEGATION.search(text)) != q_neg
        d = direction(text)
        return (
            float(null),
            float(effect),
            float(neg),
            float(q_dir != 0 and d == -q_dir),
            float(q_dir != 0 and d == q_dir),
            float(bool(_HEDGE.search(text))),
        )

    per_top = np.array([cue(i) for i in top])
    weighted = weights @ per_top
    all_cues = np.array([cue(i)[:2] for i in findings])
    p_sig, p_non = map(sum, zip(*(p_values(sents[i][0]) for i in findings), strict=True))
    last = findings[-2:]  # a paper's last findings usually state its main result
    feats = np.array(
        [
            float(sims.max()),
            float(coverage.max()),
            *weighted[:6],
            float(all_cues[:, 0].mean()),
            float(all_cues[:, 1].mean()),
            float(q_neg),
            float(bool(_COMPARES.search(question))),
            min(p_sig, 3) / 3,
            min(p_non, 3) / 3,
            float(np.mean([cue(i)[0] for i in last])),
            float(np.mean([cue(i)[1] for i in last])),
        ]
    )
    # the sentence that shows the stance: the most relevant finding that carries a cue, else the most relevant
    shown = next((i for i in top if per_top[top.index(i)][:2].any()), top[0])
    return PaperReading(feats, float(sims.max()), sents[shown][0], sents[shown][2])
