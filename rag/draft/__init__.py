"""Drafters: turn a question and its evidence into a sectioned, cited :class:`~rag.types.Draft`.

* :class:`LLMDrafter` (:mod:`rag.draft.llm`) — one call to an OpenAI-compatible chat model
  (through :mod:`rag.llm`): sources are fenced as data, the model cites them by key (``[S3]``),
  and the keys are mapped to stable ``[n]`` numbers by first appearance across sections.
* :class:`ExtractiveDrafter` (:mod:`rag.draft.extractive`) — the offline default, no LLM: a
  briefing built from the sources' own sentences, each with its citation.
"""

from rag.draft.extractive import ExtractiveDrafter
from rag.draft.llm import INSUFFICIENT, LLMDrafter, build_messages, parse_llm_markdown

__all__ = ["INSUFFICIENT", "ExtractiveDrafter", "LLMDrafter", "build_messages", "parse_llm_markdown"]
