"""Publication types as a reader weighs evidence: the strongest study design a paper's types name.

PubMed, Europe PMC, OpenAlex, Crossref and arXiv each name types their own way ("Randomized
Controlled Trial", "review-article", "preprint", "posted-content"); :func:`design_label` maps them
onto one short label for a source list, or None when the types say nothing about design.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Strongest first: the first label any of a paper's types maps to wins. Notices come before designs
# because a retraction notice or an erratum is not evidence of anything, whatever else it is tagged with.
# Types are matched lower case with `-`/`_` read as spaces, so PubMed's "Review", Europe PMC's
# "review-article", OpenAlex's "review" and Crossref's "posted-content" all meet their label here.
_PRECEDENCE: list[tuple[str, tuple[str, ...]]] = [
    ("Retraction notice", ("retraction of publication", "retraction", "retraction notice", "withdrawal", "removal")),
    ("Expression of concern", ("expression of concern",)),
    ("Erratum", ("published erratum", "erratum", "correction", "corrigendum")),
    ("Meta-analysis", ("meta analysis", "network meta analysis", "meta analysis as topic")),
    ("Systematic review", ("systematic review", "systematic reviews as topic")),
    ("Guideline", ("practice guideline", "guideline", "consensus development conference")),
    ("RCT", ("randomized controlled trial", "randomized controlled trial, veterinary")),
    (
        "Clinical trial",
        (
            "clinical trial",
            "controlled clinical trial",
            "pragmatic clinical trial",
            "equivalence trial",
            "adaptive clinical trial",
            "clinical trial, veterinary",
        ),
    ),
    ("Cohort", ("cohort study", "cohort studies", "prospective studies", "longitudinal studies")),
    ("Case-control", ("case control study", "case control studies")),
    ("Cross-sectional", ("cross sectional study", "cross sectional studies")),
    ("Observational", ("observational study", "observational study, veterinary")),
    ("Case report", ("case reports", "case report")),
    ("Trial protocol", ("clinical trial protocol", "study protocol")),
    ("Review", ("review", "review article", "scoping review", "narrative review")),
    ("Preprint", ("preprint", "posted content")),
    ("Editorial", ("editorial",)),
    ("Comment", ("comment", "commentary")),
    ("Letter", ("letter",)),
    ("News", ("news", "newspaper article")),
]
# Numbered trial phases ("Clinical Trial, Phase III") are clinical trials, whatever the phase.
_TRIAL_PHASE = re.compile(r"^clinical trial, phase [iv/]+$")
_LABEL_OF = {name: label for label, names in _PRECEDENCE for name in names}
_RANK = {label: rank for rank, (label, _) in enumerate(_PRECEDENCE)}


def _key(pub_type: str) -> str:
    return " ".join(re.sub(r"[-_]", " ", pub_type.lower()).split())


def design_label(pub_types: Iterable[str]) -> str | None:
    """The strongest design the types name (``["Journal Article", "Meta-Analysis"]`` → ``Meta-analysis``);
    None when they only name generic kinds (``Journal Article``, ``article``, ``research-article``)."""
    labels = []
    for pub_type in pub_types:
        key = _key(pub_type)
        label = "Clinical trial" if _TRIAL_PHASE.match(key) else _LABEL_OF.get(key)
        if label:
            labels.append(label)
    return min(labels, key=_RANK.__getitem__) if labels else None
