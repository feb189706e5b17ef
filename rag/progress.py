"""Progress bars on stderr (rich) for long work; the stages only report events to a callback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rag.types import FindProgress, IngestProgress

_LABELS = {"read": "Reading", "embed": "Embedding", "notices": "Notices", "full_text": "Full text"}


def _progress(show: bool) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
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
    return Progress(*columns, console=Console(stderr=True), disable=not show, transient=False)


class _Bars:
    """One bar per stage (files read; chunks embedded, with the token rate) and per service searched."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.tasks: dict[str, tuple[Any, float]] = {}

    def _task(self, key: str, label: str, total: int) -> tuple[Any, float]:
        if key not in self.tasks:
            self.tasks[key] = (self.bar.add_task(label, total=total, rate=""), time.perf_counter())
        return self.tasks[key]

    def ingest(self, event: IngestProgress) -> None:
        task, started = self._task(event.stage, _LABELS[event.stage], event.total)
        rate = ""
        if event.tokens_total:
            per_s = event.tokens_done / max(time.perf_counter() - started, 1e-9)
            rate = f"{per_s:,.0f} tok/s · {event.tokens_done:,}/{event.tokens_total:,} tokens"
        self.bar.update(task, completed=event.done, total=event.total, rate=rate)  # totals grow as files are read

    def find(self, event: FindProgress) -> None:
        key = f"search:{event.source}" if event.stage == "search" else event.stage
        label = event.source if event.stage == "search" else _LABELS[event.stage]
        task, _ = self._task(key, label, event.total)
        self.bar.update(task, completed=event.done, total=event.total, rate=event.detail)


@contextmanager
def ingest_bars(show: bool = True) -> Iterator[Callable[[IngestProgress], None]]:
    """A callback for :class:`~rag.types.IngestProgress` events that draws a bar per stage."""
    with _progress(show) as bar:
        yield _Bars(bar).ingest


@contextmanager
def find_bars(show: bool = True) -> Iterator[tuple[Callable[[FindProgress], None], Callable[[IngestProgress], None]]]:
    """Callbacks for a literature search: a bar per service (searching → `12 found`), one for the
    Crossref notice checks and the full-text fetches, then the ingest bars — all on one display."""
    with _progress(show) as bar:
        bars = _Bars(bar)
        yield bars.find, bars.ingest
