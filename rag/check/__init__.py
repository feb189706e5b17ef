"""Citation grounding: every cited sentence is checked against the evidence it cites.

* :mod:`rag.check.grounding` — :func:`check`: verdicts, receipts (quote and span), citation recall
  and precision, and repairs (``strict`` re-cites or removes, ``flag`` marks, ``off`` skips).
* Judges share one interface (:class:`Judge`, :mod:`rag.check.base`): :class:`OfflineJudge` (the
  default, fitted, no model download), :class:`LLMJudge` (one batched call per answer through the
  configured endpoint) and :class:`NLIJudge` (a local ONNX NLI model).
* :mod:`rag.check.topic` — :class:`OnQuestion`: whether a claim is on the question at all (a quote
  proves its words are in the source, not that they answer anything).
"""

from rag.check.base import Judge, Support, quote_location, quoted
from rag.check.grounding import check, cited_claims, claims_to_check, needs_citation
from rag.check.llm_judge import LLMJudge, verdicts_from
from rag.check.nli import NLIJudge
from rag.check.offline import CLASH_FEATURES, FEATURES, POLARITY_FEATURES, OfflineJudge, numbers, specific_terms
from rag.check.topic import OnQuestion

__all__ = [
    "CLASH_FEATURES",
    "FEATURES",
    "POLARITY_FEATURES",
    "Judge",
    "LLMJudge",
    "NLIJudge",
    "OfflineJudge",
    "OnQuestion",
    "Support",
    "check",
    "cited_claims",
    "claims_to_check",
    "needs_citation",
    "numbers",
    "quote_location",
    "quoted",
    "specific_terms",
    "verdicts_from",
]
