"""Turning a library's exception into the short reason that ends a one-line error."""

from __future__ import annotations


def short_reason(exc: BaseException, last_line: bool = False) -> str:
    """One line of ``exc``'s message, at most 200 characters, or its type if it has none.

    ``last_line`` is for libsndfile, whose messages put the useful part last; torch and
    network errors put it first.
    """
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    return (lines[-1] if last_line else lines[0])[:200]
