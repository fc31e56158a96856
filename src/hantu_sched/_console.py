"""The terminal views, with ``rich``: ``status``'s coloured table and multi-day ``simulate``'s
progress bar. Both are for people at a terminal only: a :class:`rich.console.Console` that is not
a terminal (a pipe, a file, journald, ``TERM=dumb``) gets the plain text of
:func:`~hantu_sched._inspect.format_status` and no bar, so scripts and logs never see escape
codes. Rich decides what a terminal is (``isatty``, ``FORCE_COLOR``, ``NO_COLOR``,
``TTY_COMPATIBLE``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ._inspect import STATUS_COLUMNS, format_status, status_lines, status_rows

__all__ = ["ProgressLogHandler", "log_handler", "print_status", "progress", "render_status"]

#: Styles of states and attempt outcomes (anything else is unstyled).
_STYLES = {
    "done": "green",
    "running": "yellow",
    "running (stale)": "bold red",
    "failed": "bold red",
    "crashed": "bold red",
    "needs-reconcile": "magenta",
    "interrupted": "yellow",
    "skipped": "dim",
    "not-started": "dim",
    "pending": "cyan",
}


def render_status(report: Mapping[str, Any], console: Console, *, history: bool = False) -> None:
    """Print ``status`` on *console* as a compact coloured table (attempt rows dimmed)."""
    head, tail = status_lines(report)
    for line in head:
        console.print(Text(line, style="bold" if line is head[0] else ""))
    if report["jobs"]:
        table = Table(
            box=None, pad_edge=False, collapse_padding=True, header_style="bold", show_edge=False
        )
        for name, _width in STATUS_COLUMNS:
            table.add_column(name, overflow="fold", no_wrap=name != "last attempt")
        for row in status_rows(report, history=history):
            attempt_row = row[0].startswith("  ")
            cells = [Text(cell, style="dim" if attempt_row else "") for cell in row]
            cells[1] = Text(row[1], style=_STYLES.get(row[1], ""))
            table.add_row(*cells)
        console.print(table)
    for line in tail:
        style = "red" if line.startswith("recent errors: ") and not line.endswith("none") else ""
        console.print(Text(line, style=style))


def print_status(report: Mapping[str, Any], console: Console, *, history: bool = False) -> None:
    """The coloured table on a terminal, else the plain text (no escape codes)."""
    if console.is_terminal:
        render_status(report, console, history=history)
    else:
        console.file.write(format_status(report, history=history) + "\n")


@contextlib.contextmanager
def progress(total: int, description: str, console: Console) -> Iterator[Callable[[str], None]]:
    """A progress bar of *total* steps on *console* if it is a terminal (else nothing is drawn);
    yields ``advance(label)``, which counts one step done and shows *label*. The bar disappears
    when done (the summary printed after it says what happened)."""
    if not console.is_terminal or total < 2:
        yield lambda _label: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[label]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total, label="")

        def advance(label: str) -> None:
            bar.update(task, advance=1, label=label)

        yield advance


class ProgressLogHandler(logging.Handler):
    """``run``'s log handler on a terminal: records are printed as formatted lines, except the
    progress of long batches (records with ``extra={"progress": {"label", "done", "total"}}``,
    e.g. screening's quotes), which drive one transient progress bar per (logger, label)
    instead of a line every 10 %. The bar is drawn only while a batch is in progress."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self._bars: Progress | None = None
        self._tasks: dict[tuple[str, str], Any] = {}
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            step = getattr(record, "progress", None)
            with self._guard:
                if isinstance(step, dict):
                    self._advance(record.name, step)
                    return
                line = self.format(record)
                target = self._bars.console if self._bars is not None else self.console
                target.print(line, markup=False, highlight=False, soft_wrap=True)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)

    def _advance(self, logger: str, step: Mapping[str, Any]) -> None:
        label, done, total = str(step["label"]), int(step["done"]), int(step["total"])
        if self._bars is None:
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bars.start()
        key = (logger, label)
        if key not in self._tasks:
            name = logger.removeprefix("hantu_sched.")
            self._tasks[key] = self._bars.add_task(f"{name}: {label}", total=total)
        self._bars.update(self._tasks[key], completed=done, total=total)
        if done >= total:
            self._bars.remove_task(self._tasks.pop(key))
            if not self._tasks:
                self._bars.stop()
                self._bars = None

    def close(self) -> None:
        with self._guard:
            if self._bars is not None:
                self._bars.stop()
                self._bars = None
        super().close()


def log_handler(formatter: logging.Formatter, console: Console, *, bars: bool) -> logging.Handler:
    """The runner's log handler writing to *console*'s file: a :class:`ProgressLogHandler` when
    *bars* and the console is a terminal, else a plain :class:`logging.StreamHandler` (every
    record a line, progress included)."""
    handler: logging.Handler
    if bars and console.is_terminal:
        handler = ProgressLogHandler(console)
    else:
        handler = logging.StreamHandler(console.file)
    handler.setFormatter(formatter)
    return handler
