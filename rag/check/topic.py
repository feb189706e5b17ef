"""Whether an answer sentence is on the question. A quote proves that its words are in the source,
not that they answer anything: a sentence that is packaging (a stamp, a permission line, a running
header) or that is about something else is set aside, however well its source supports it.

On-question is the cosine of the question to the sentence — or, for a sentence that opens by pointing
back ("This effect …", "These results …"), to it read with the one before it, whichever is larger: such
a sentence is on the question through its neighbour, any other must be on it by itself.
The cut (``check.on_question``) is chosen by ``python -m evals.topic``: what lets nearly every expert
answer sentence through.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from rag.types import Embedder

_POINTS_BACK = re.compile(
    r"^(?:this|these|that|those|it|its|they|their|such|both|the latter|the former|here|thus|however|"
    r"in contrast|similarly|likewise|moreover|furthermore|additionally|conversely)\b",
    re.IGNORECASE,
)


class OnQuestion:
    """Scores answer sentences against the question with the bundled embedder.

    >>> from rag.embed import CachedEmbedder, LocalEmbedder
    >>> fit = OnQuestion(CachedEmbedder(LocalEmbedder()), cut=0.1)
    >>> on, off = fit.scores("Does vitamin D prevent fractures?", [
    ...     ("", "Vitamin D supplements lowered hip fracture rates in older women."),
    ...     ("", "The compiler emits bytecode for the virtual machine."),
    ... ])
    >>> on > 0.1 > off
    True
    """

    def __init__(self, embedder: Embedder, cut: float) -> None:
        self.embedder, self.cut = embedder, cut

    def scores(self, question: str, sentences: Sequence[tuple[str, str]]) -> list[float]:
        """Per (previous sentence, sentence), how close the sentence is to the question (a cosine)."""
        if not sentences:
            return []
        alone = [s for _, s in sentences]
        read_on = [f"{prev} {s}".strip() if _POINTS_BACK.match(s) else s for prev, s in sentences]
        vectors = self.embedder.embed([question, *alone, *read_on])
        sims = vectors[1:] @ vectors[0]
        return [round(float(v), 4) for v in np.maximum(sims[: len(alone)], sims[len(alone) :])]
