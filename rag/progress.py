"""Progress bars on stderr (rich) for long work; the stages only report events to a callback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rag.types import IngestProgress

_LABELS = {"read": "Reading", "embed": "Embedding"}


@contextmanager
def ingest_bars(show: bool = True) -> Iterator[Callable[[IngestProgress], None]]:
    """A callback for :class:`~rag.types.IngestProgress` events that draws a bar per stage
    (files read; chunks embedded, with the token rate)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[rate]}"),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not show, transient=False) as bar:
        tasks: dict[str, tuple[TaskID, float]] = {}

        def on_progress(event: IngestProgress) -> None:
            if event.stage not in tasks:
                tasks[event.stage] = (
                    bar.add_task(_LABELS[event.stage], total=event.total, rate=""),
                    time.perf_counter(),
                )
            task, started = tasks[event.stage]
            rate = ""
            if event.tokens_total:
                per_s = event.tokens_done / max(time.perf_counter() - started, 1e-9)
                rate = f"{per_s:,.0f} tok/s · {event.tokens_done:,}/{event.tokens_total:,} tokens"
            bar.update(task, completed=event.done, rate=rate)

        yield on_progress
