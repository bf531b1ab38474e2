"""Output for people: rich tables and progress bars on a terminal, plain lines in a pipe.

Progress goes to stderr and only when both stdout and stderr are terminals, so nothing of it
reaches a pipe, a file or a CI log. Tables go to stdout, as rich tables on a terminal and as
the command's plain lines anywhere else, so scripts can keep parsing them.
"""

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table
from rich.text import Text

T = TypeVar("T")

# Advancing a bar takes a lock; counting in steps keeps a long walk fast.
PROGRESS_STEP = 250


@dataclass(frozen=True)
class Consoles:
    out: Console
    err: Console

    @property
    def interactive(self) -> bool:
        return self.out.is_terminal and self.err.is_terminal


def consoles() -> Consoles:
    """Consoles on the streams of this moment (a test runner may have replaced them)."""
    return Consoles(out=_console(sys.stdout), err=_console(sys.stderr))


def _console(stream: TextIO) -> Console:
    # The stream decides, not FORCE_COLOR or TTY_COMPATIBLE: nothing styled reaches a pipe.
    isatty = getattr(stream, "isatty", None)
    return Console(file=stream, force_terminal=bool(isatty and isatty()))


class Tracker:
    """What a command reports while it works; does nothing when no bar is shown."""

    def __init__(self, bar: Progress | None = None, task: TaskID | None = None) -> None:
        self._bar = bar
        self._task = task

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, steps)

    def describe(self, text: str) -> None:
        """Say what is happening now (shown at once: steps are few and may be quick)."""
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=text, refresh=True)

    def counted(self, items: Iterable[T]) -> Iterator[T]:
        """Yield `items`, advancing the bar as they pass."""
        pending = 0
        for item in items:
            yield item
            pending += 1
            if pending == PROGRESS_STEP:
                self.advance(pending)
                pending = 0
        self.advance(pending)


@contextmanager
def progress(description: str, *, total: int | None) -> Iterator[Tracker]:
    """A transient progress bar on a terminal (`total=None`: the length is not known)."""
    shown = consoles()
    if not shown.interactive:
        yield Tracker()
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=shown.err, transient=True) as bar:
        yield Tracker(bar, bar.add_task(description, total=total))


def show_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str | Text]],
    *,
    plain: Callable[[], str],
    title: str | None = None,
    header: bool = True,
) -> None:
    """A rich table when stdout is a terminal, else the text `plain` returns."""
    out = consoles().out
    if not out.is_terminal:
        typer.echo(plain())
        return
    # Folded, never cut: a variable name or a hash is useless with an ellipsis in it.
    folded = [Column(name, overflow="fold") for name in columns]
    table = Table(*folded, title=title, title_justify="left", show_header=header)
    for row in rows:
        # Text cells: brackets in a value ("[redacted]") are shown, never read as markup.
        table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
    out.print(table)


def mark(ok: bool) -> Text:
    return Text("✓", style="green") if ok else Text("✗", style="bold red")
