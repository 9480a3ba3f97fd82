"""How Ctrl-C and SIGTERM stop genreshift: both as a KeyboardInterrupt, so that the finally
blocks that remove temp files run, and a training step is never cut in half.

A SIGINT that the process was started to ignore (a background job of a shell without job
control) stays ignored, as the user expects of ``cmd &``.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator


_first_signal: list[int] = []  # the first signal the handlers here received since they were set


@contextmanager
def _handling(handler: Callable) -> Iterator[None]:
    """``handler`` for SIGTERM, and for SIGINT unless it is ignored; main thread only (Python
    lets only the main thread set handlers, and only it receives signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # A signal before this point has already stopped what it was meant to stop; what is
    # recorded from here on is this run's.
    _first_signal.clear()
    sigs = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else [])
    previous = {sig: signal.signal(sig, handler) for sig in sigs}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# Signals after the first that are let pass while the first one's cleanup runs; the next
# one stops at once.
PATIENCE = 1


def _record(signum: int) -> None:
    if not _first_signal:
        _first_signal.append(signum)


def first_signal() -> int | None:
    """The first signal the handlers here received since they were last set, or None."""
    return _first_signal[0] if _first_signal else None


def exit_code() -> int:
    """The shell's code for the signal that stopped the process, 128 + its number: 143 for
    SIGTERM (a job scheduler's stop), 130 for Ctrl-C (also when no signal was seen)."""
    return 128 + (first_signal() or signal.SIGINT)


@contextmanager
def term_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill, a service manager, torchrun stopping its workers) raises
    KeyboardInterrupt as Ctrl-C does; ``first_signal`` tells which, for the exit code.

    The next ``PATIENCE`` signals do not interrupt the cleanup the first one started (the
    finally blocks that remove temp files): torchrun sends SIGTERM to the workers that are
    still running when one of them exits, which may be one that is already cleaning up. A
    signal after those stops at once."""
    count = 0

    def interrupt(signum, frame):
        nonlocal count
        _record(signum)
        count += 1
        if count == 1 or count > 1 + PATIENCE:
            raise KeyboardInterrupt

    with _handling(interrupt):
        yield


class StopFlag:
    """Set by the first signal inside ``stop_between_steps``; true once set."""

    def __init__(self) -> None:
        self.requested = False

    def __bool__(self) -> bool:
        return self.requested


@contextmanager
def stop_between_steps(defer: bool) -> Iterator[StopFlag]:
    """Ctrl-C or SIGTERM during a training step only sets the flag, so the loop can finish
    the step (and its evaluation and save) and stop after it: then what is saved - weights,
    optimiser and random streams - belongs to one step, and ``--resume`` continues exactly.
    A second signal raises KeyboardInterrupt at once.

    Not under torchrun (``defer`` false): the ranks would finish different steps, and a rank
    waiting in a collective for one that left would hang."""
    flag = StopFlag()
    if not defer:
        yield flag
        return

    def request(signum, frame):
        _record(signum)
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True

    with _handling(request):
        yield flag
