"""interrupts.term_as_interrupt: SIGTERM stops like Ctrl-C, and lets the cleanup finish."""

from __future__ import annotations

import os
import signal

import pytest

from genreshift import interrupts


def _term() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # delivered to the main thread before kill returns


def test_sigterm_raises_keyboard_interrupt_and_is_recorded():
    with pytest.raises(KeyboardInterrupt), interrupts.term_as_interrupt():
        _term()
    assert interrupts.first_signal() == signal.SIGTERM and interrupts.exit_code() == 143


def test_a_second_signal_does_not_cut_the_cleanup_short_but_a_third_stops_it():
    """torchrun sends SIGTERM to the workers still running when one exits; a worker already
    removing its temp files must not be interrupted by it."""
    cleaned = []
    with pytest.raises(KeyboardInterrupt) as stopped, interrupts.term_as_interrupt():
        try:
            _term()
        finally:
            _term()  # arrives during the cleanup: let pass
            cleaned.append("temp files removed")
            _term()  # the user insists: stop now
            cleaned.append("never reached")
    assert cleaned == ["temp files removed"]
    assert stopped.type is KeyboardInterrupt
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back
