"""The LLM judge: one batched call per answer scores every cited sentence and quotes its support."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from rag.check.base import Judge, Support
from rag.llm import ChatModel, Message, complete_parsed, json_reply_tokens
from rag.prompts import fence, render
from rag.types import LLMCall

_MIN_QUOTE_CHARS = 8  # a shorter "quote" is no receipt
_UNUSABLE = "LLM judge unusable, offline judge used instead"


class LLMJudge:
    """Asks the chat model, in one call per answer, whether each claim is supported by what it cites.

    :meth:`prepare` sends every cited sentence with its passages at once; :meth:`support` answers
    from those verdicts and falls back to the offline judge for anything not asked (re-citing,
    citation-precision probes) or when the model's reply cannot be used.
    """

    threshold = 0.5  # the model is asked for a support probability

    def __init__(self, chat: ChatModel, fallback: Judge) -> None:
        self.chat, self.fallback = chat, fallback
        self.name = f"llm-judge:{chat.name.removeprefix('llm:')}"
        self._verdicts: dict[tuple[str, tuple[str, ...]], Support] = {}

    async def prepare(self, items: Sequence[tuple[str, Sequence[str]]]) -> LLMCall:
        """Ask about every ``(claim, passages)`` at once; returns what the call cost and, when its reply
        was unusable, why (the offline judge then answers everything)."""
        if not items:
            return LLMCall()
        blocks = []
        for i, (claim, passages) in enumerate(items, start=1):
            cited = "\n".join(f'<source id="P{j}">\n{fence(p)}\n</source>' for j, p in enumerate(passages, start=1))
            blocks.append(f"Claim {i}: {fence(claim)}\n{cited}")
        messages = [
            Message("system", render("judge_system_v1")),
            Message("user", render("judge_user_v1", n_claims=len(items), claims="\n\n".join(blocks))),
        ]
        verdicts, call = await complete_parsed(
            self.chat,
            messages,
            lambda text: verdicts_from(_json_array(text), len(items)),
            _UNUSABLE,
            max_tokens=json_reply_tokens(len(items)),
        )
        if verdicts is not None:
            self.accept(items, verdicts)
        return call

    def accept(self, items: Sequence[tuple[str, Sequence[str]]], verdicts: Sequence[tuple[float, str]]) -> None:
        """Take the model's ``(score, quote)`` for each ``(claim, passages)``, however they were asked for."""
        for (claim, passages), (score, quote) in zip(items, verdicts, strict=True):
            p, span = _locate(quote, passages)
            if span is None:  # no exact quote: take the offline judge's best sentence as the receipt
                best = self.fallback.support(claim, passages)
                p, span = best.passage, best.span
            self._verdicts[(claim, tuple(passages))] = Support(score, p, span)

    def support(self, claim: str, passages: Sequence[str]) -> Support:
        found = self._verdicts.get((claim, tuple(passages)))
        if found is not None:
            return found
        fallback = self.fallback.support(claim, passages)
        # rescale so the fallback's own threshold maps onto ours
        score = 0.5 + (fallback.score - self.fallback.threshold) / 2
        return Support(min(max(score, 0.0), 1.0), fallback.passage, fallback.span)


def _json_array(text: str) -> object:
    match = re.search(r"\[.*\]", text, re.DOTALL)
    if not match:
        raise ValueError("no JSON array in the reply")
    return json.loads(match.group(0))


def verdicts_from(data: object, n: int) -> list[tuple[float, str]]:
    """The ``(score, quote)`` of each of ``n`` claims from the model's JSON list (ValueError if it is not one)."""
    if not isinstance(data, list) or len(data) != n:
        raise ValueError(f"expected {n} verdicts, got {len(data) if isinstance(data, list) else type(data).__name__}")
    out = []
    for item in data:
        score = float(item.get("score", 0.0)) if isinstance(item, dict) else 0.0
        quote = str(item.get("quote") or "") if isinstance(item, dict) else ""
        out.append((min(max(score, 0.0), 1.0), quote))
    return out


def _locate(quote: str, passages: Sequence[str]) -> tuple[int, tuple[int, int] | None]:
    quote = quote.strip().strip('"')
    if len(quote) < _MIN_QUOTE_CHARS:
        return 0, None
    for p, text in enumerate(passages):
        at = text.find(quote)
        if at >= 0:
            return p, (at, at + len(quote))
    return 0, None
