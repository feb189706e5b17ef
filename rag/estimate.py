"""What an answer would cost with the configured model, worked out without calling it.

Retrieval runs as for an answer (it is local), so the draft's prompt is the one that would be sent,
counted exactly with tiktoken. The check's prompt holds the cited papers' evidence (at most all of the
draft's) and the answer's claims; completions are at most ``max_tokens`` and expected at the lengths
``make llm-check`` measured. Prices are per million tokens, when configured
(``RAG_LLM__PRICE_PROMPT``, ``RAG_LLM__PRICE_COMPLETION``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from rag.draft.llm import build_messages, fitting, format_sources
from rag.prompts import render
from rag.settings import Settings
from rag.tokens import count_tokens
from rag.types import Evidence


class CallEstimate(BaseModel):
    """One model call of an answer."""

    call: str = Field(description="`draft` or `check` (the citations judged and the stances read, together).")
    prompt_tokens: int = Field(description="Prompt tokens: exact for the draft, at most for the check.")
    completion_tokens: int = Field(description="Completion tokens expected.")
    max_completion_tokens: int = Field(description="Completion tokens at most (RAG_LLM__MAX_TOKENS).")


class Estimate(BaseModel):
    """The calls an answer would make, their tokens and, where prices are configured, the cost."""

    questions: int = Field(1, description="Answers this estimate covers.")
    model: str = Field(description="The configured model.")
    calls: list[CallEstimate] = Field(default_factory=list, description="Per answer, in order.")
    evidence_given: int = Field(0, description="Evidence chunks that fit the model's context (the last question's).")
    prompt_tokens: int = Field(0, description="All questions' prompt tokens.")
    completion_tokens: int = Field(0, description="All questions' expected completion tokens.")
    cost_usd: float | None = Field(None, description="Expected cost; None without a price table.")
    max_cost_usd: float | None = Field(None, description="Cost were every completion to reach max_tokens.")

    def plus(self, other: Estimate) -> Estimate:
        """Both questions' estimates together (the calls listed are the last one's)."""
        add = lambda a, b: None if a is None or b is None else round(a + b, 6)  # noqa: E731
        return other.model_copy(
            update={
                "questions": self.questions + other.questions,
                "prompt_tokens": self.prompt_tokens + other.prompt_tokens,
                "completion_tokens": self.completion_tokens + other.completion_tokens,
                "cost_usd": add(self.cost_usd, other.cost_usd),
                "max_cost_usd": add(self.max_cost_usd, other.max_cost_usd),
            }
        )


def estimate(question: str, evidence: Sequence[Evidence], settings: Settings) -> Estimate:
    """The calls one answer to ``question`` from ``evidence`` (as retrieved) would make."""
    llm = settings.llm
    given, _ = fitting(question, evidence, settings)
    draft = sum(count_tokens(m.content) for m in build_messages(question, given, settings, llm.draft_format == "json"))
    calls = [CallEstimate(call="draft", prompt_tokens=draft, completion_tokens=min(llm.expected_answer_tokens,
             llm.max_tokens), max_completion_tokens=llm.max_tokens)]  # fmt: skip
    if llm.max_calls >= 2 and (settings.check.mode != "off" or settings.answer.consensus != "off"):
        fixed = count_tokens(render("verify_system_v1")) + count_tokens(
            render("verify_user_v1", question=question, sources="", n_claims=0, claims="")
        )
        check = fixed + count_tokens(format_sources(given)) + llm.max_tokens  # the sources, then the claims
        calls.append(CallEstimate(call="check", prompt_tokens=check, completion_tokens=min(
            llm.expected_check_tokens, llm.max_tokens), max_completion_tokens=llm.max_tokens))  # fmt: skip
    prompt = sum(c.prompt_tokens for c in calls)
    completion = sum(c.completion_tokens for c in calls)
    priced = llm.price_prompt is not None and llm.price_completion is not None

    def cost(out_tokens: int) -> float | None:
        if not priced:
            return None
        return round((prompt * (llm.price_prompt or 0) + out_tokens * (llm.price_completion or 0)) / 1e6, 6)

    return Estimate(
        model=llm.model or "gpt-4o-mini",
        calls=calls,
        evidence_given=len(given),
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost(completion),
        max_cost_usd=cost(sum(c.max_completion_tokens for c in calls)),
    )
