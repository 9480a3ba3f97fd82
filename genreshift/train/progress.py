"""Progress of a training run: a bar (or plain lines) on stderr, and ``log.jsonl``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def _fmt(values: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in values.items())


class Progress:
    """A rich bar with the latest losses on a terminal, plain lines otherwise (a background run
    logging to a file); every line also goes to ``log.jsonl``. Only rank 0 shows anything."""

    def __init__(self, title: str, total: int, start: int, main: bool, run_dir: Path, quiet: bool, log_every: int):
        """``start`` > 0 continues a run (and its log); 0 starts the log afresh. ``main``: this
        is rank 0, the one process that shows and logs."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

        from ..display import stderr

        self.active = main
        self.quiet = quiet or not main
        self.log_every = max(1, log_every)
        self.log_path = run_dir / "log.jsonl"
        self.console = stderr
        self.started, self.start_step = time.perf_counter(), start
        self.bar = None
        if self.active and start == 0:
            self.log_path.unlink(missing_ok=True)
        if not self.quiet and stderr.is_terminal:
            columns = [TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn()]
            self.bar = Bar(*columns, TextColumn("{task.fields[losses]}"), TimeRemainingColumn(), console=stderr)
            self.task = self.bar.add_task(title, total=total, completed=start, losses="")
            self.bar.start()

    def step(self, step: int, losses: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, losses=_fmt(losses))
        if step % self.log_every == 0:
            rate = (step - self.start_step) / max(time.perf_counter() - self.started, 1e-9)
            self.record({"step": step, **losses, "steps_per_s": rate}, show=self.bar is None)

    def record(self, entry: dict[str, Any], show: bool = True) -> None:
        if not self.active:
            return
        with open(self.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        if show and not self.quiet:
            text = _fmt({k: v for k, v in entry.items() if k != "step"})
            self.console.print(f"step {entry['step']}: {text}", markup=False, highlight=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def say(main: bool, quiet: bool, text: str) -> None:
    """One line on stderr from rank 0 (``main``), before a Progress exists."""
    if main and not quiet:
        print(text, file=sys.stderr, flush=True)
