"""Progress bars (with ETA) and status lines on stderr, so stdout stays clean for data."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, highlight=False, soft_wrap=True)
T = TypeVar("T")


def quiet() -> bool:
    """Quiet when asked, and in every training process but the first under torchrun (rank 0 speaks for all)."""
    return os.environ.get("BERT_COMPRESS_QUIET") == "1" or os.environ.get("RANK", "0") != "0"


_muted = 0


def info(message: str) -> None:
    if not quiet() and not _muted:
        console.print(message)


@contextmanager
def muted() -> Iterator[None]:
    """info() says nothing inside (work repeated many times under a progress bar, e.g. each candidate's export)."""
    global _muted
    _muted += 1
    try:
        yield
    finally:
        _muted -= 1


@contextmanager
def bar(description: str, total: int) -> Iterator:
    """A progress bar with ETA; `advance(n, **fields)` moves it and updates the trailing `status` text."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        disable=quiet() or not sys.stderr.isatty() and os.environ.get("BERT_COMPRESS_PROGRESS") != "1",
        transient=False,
    )
    with progress:
        task = progress.add_task(description, total=total, status="")

        def advance(n: int = 1, status: str | None = None) -> None:
            progress.update(task, advance=n, **({"status": status} if status is not None else {}))

        yield advance


def track(items: Iterable[T], description: str, total: int) -> Iterator[T]:
    with bar(description, total) as advance:
        for item in items:
            yield item
            advance()
