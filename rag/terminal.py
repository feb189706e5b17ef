"""What the CLI shows on a terminal besides answers: the working spinner, and estimates as a table."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rag.estimate import Estimate


class Working:
    """A spinner on stderr naming the pipeline's step and the seconds it has taken (a small model on a CPU
    can take minutes); shown only on a terminal."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console, self.enabled = console, enabled and console.is_terminal
        self.step, self.started = "Starting", time.monotonic()
        self._status: Any = None

    def __rich__(self) -> str:
        return f"{escape(self.step)} … [dim]{time.monotonic() - self.started:.0f} s[/]"

    def stage(self, step: str) -> None:
        self.step = step

    def __enter__(self) -> Working:
        if self.enabled:
            self._status = self.console.status(self)  # re-rendered ~12 times a second: the seconds count up
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()


def estimate_table(guess: Estimate) -> Table:
    """The calls, tokens and cost of an estimate."""
    each = f" per answer, {guess.questions} answers" if guess.questions > 1 else ""
    table = Table(title=f"Estimate for {guess.model}{each} (no model was called)")
    for col in ("call", "prompt tokens", "completion tokens (expected / at most)"):
        table.add_column(col, justify="left" if col == "call" else "right")
    for c in guess.calls:
        table.add_row(c.call, f"{c.prompt_tokens:,}", f"{c.completion_tokens:,} / {c.max_completion_tokens:,}")
    table.caption = (
        f"{len(guess.calls)} calls; {guess.evidence_given} evidence chunks fit the context; all answers: "
        f"{guess.prompt_tokens:,} prompt + {guess.completion_tokens:,} completion tokens; "
        + (
            f"cost ${guess.cost_usd:.4f} (at most ${guess.max_cost_usd:.4f})"
            if guess.cost_usd is not None and guess.max_cost_usd is not None
            else "no price set (RAG_LLM__PRICE_PROMPT, RAG_LLM__PRICE_COMPLETION)"
        )
    )
    return table
