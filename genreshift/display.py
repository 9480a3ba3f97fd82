"""What the terminal shows during and after a conversion (rich), kept out of the library."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .options import TrackResult

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """One plain line on stderr: no markup, no traceback."""
    stderr.print(Text(f"error: {message}", style="red"))


def warning(message: str) -> None:
    """One plain line on stderr: the command worked, but its result needs the user's eye."""
    stderr.print(Text(f"warning: {message}", style="yellow"))


def note(message: str) -> None:
    """One plain line on stderr about a choice made for the user."""
    stderr.print(Text(f"note: {message}", style="yellow"))


class _RealTimeColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rtf = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rtf:5.1f}x real time")


class ConvertProgress:
    """One bar over the total audio seconds, with files done and the current real-time factor.

    Made before the ``Converter`` it is given to; the bar shows while ``running``.
    """

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.files_done = 0
        self.total_files = 0
        self.task = None
        self.progress = Progress(
            TextColumn("[bold]converting"),
            BarColumn(),
            TextColumn("{task.fields[files]}"),
            TextColumn("{task.completed:.0f}/{task.total:.0f} s of audio"),
            _RealTimeColumn(),
            TimeElapsedColumn(),
            console=stderr,
            disable=quiet,
            transient=False,
        )

    def _files(self) -> str:
        return f"{self.files_done}/{self.total_files} files"

    @contextmanager
    def running(self, total_seconds: float, total_files: int) -> Iterator["ConvertProgress"]:
        self.total_files = total_files
        self.task = self.progress.add_task("convert", total=max(total_seconds, 1e-9), files=self._files())
        self.started = time.perf_counter()
        self.progress.start()
        try:
            yield self
        finally:
            self.progress.stop()

    def show(self, seconds: float, files: int) -> None:
        """Set the totals outright (rank 0 showing every rank's progress: see shards.py)."""
        if self.task is None:  # not running: nothing to show
            return
        self.files_done = files
        self.progress.update(self.task, completed=seconds, files=self._files())

    def __call__(self, seconds: float, result: TrackResult | None) -> None:
        if self.task is None:  # not running: nothing to show
            return
        if seconds:
            self.progress.advance(self.task, seconds)
        if result is not None:  # the pipeline has counted every second of it by now
            self.files_done += 1
            if result.status == "failed":
                self.failed(result)
            self.progress.update(self.task, files=self._files())

    def failed(self, result: TrackResult) -> None:
        """The one error line of a failed file (under torchrun also of another rank's)."""
        error(result.message)


def summary_table(results: list[TrackResult], gain: bool = False) -> Table:
    """One row per file; a preview's excerpt when there is one, and with ``gain`` (-v) the
    gain levelling applied."""
    table = Table(title="genreshift convert", show_lines=False)
    excerpts = any(r.excerpt is not None for r in results)
    names = ["file", "duration", "seconds"]
    if excerpts:
        names.append("excerpt")
    if gain:
        names.append("gain")
    for name in names:
        table.add_column(name, justify="left" if name == "file" else "right")
    table.add_column("status", justify="left")
    style = {"converted": "green", "skipped": "yellow", "failed": "red"}
    for r in results:
        status = r.status + (f" ({r.message})" if r.message and r.status != "failed" else "")
        cells = [str(r.source), f"{r.duration:.1f} s", f"{r.seconds:.2f}"]
        if excerpts:
            cells.append(excerpt_cell(r))
        if gain:
            cells.append(gain_cell(r))
        table.add_row(*cells, Text(status, style=style.get(r.status, "")))
    return table


def excerpt_cell(r: TrackResult) -> str:
    """The stretch of the track a preview converted, in seconds of the track."""
    return "" if r.excerpt is None else f"{r.excerpt[0]:.1f}–{r.excerpt[1]:.1f} s"


def gain_cell(r: TrackResult) -> Text:
    """The overall gain levelling applied, and whether the gain limit held it back somewhere."""
    if r.gain_db is None:
        return Text("")
    limit = " (limit)" if r.gain_limited else ""
    return Text(f"{r.gain_db:+.1f} dB{limit}")
