"""What the command modules share: option aliases (fastapi-cli style ``Annotated`` types),
the ``--vocoder`` help text, and ``fail()``. A leaf: it imports no command module, so the
commands import it and ``cli.py`` imports them, with no circle."""

from __future__ import annotations

import math
from typing import Annotated

import typer

Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.", envvar="GENRESHIFT_DEVICE")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]


def finite(value: float | None) -> float | None:
    """Click's ranges let "nan" through (every comparison with NaN is false)."""
    if value is not None and value != value:
        raise typer.BadParameter("must be a number, not nan")
    return value


def seconds_above_zero(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter("must be a finite number of seconds above 0")
    return value


def seconds_from_zero(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter("must be a finite number of seconds, 0 or more")
    return value


def strength_in_range(value: float) -> float:
    from .options import strength_problem  # a leaf of plain data: no torch

    problem = strength_problem(value)
    if problem is not None:
        raise typer.BadParameter(problem.removeprefix("strength "))
    return value


def batch_size_value(value: str) -> int | str:
    """--batch-size N or auto."""
    from .options import batch_size_problem

    parsed: int | str = value.strip().lower()
    if parsed != "auto":
        try:
            parsed = int(parsed)
        except ValueError:
            parsed = value
    problem = batch_size_problem(parsed)
    if problem is not None:
        raise typer.BadParameter(problem.removeprefix("batch size "))
    return parsed


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one error line (under torchrun by rank 0 only) and return the
    ``typer.Exit(code)`` to raise."""
    from . import distrib
    from .display import error

    if distrib.is_main():
        error(message)
    return typer.Exit(code)


def vocoder_help() -> str:
    """What --vocoder takes: the released vocoders are read from the registry (no torch, no
    download), so a value is offered only when a file for it exists."""
    from .registry import WeightsError, registry_entries

    try:
        released = [e.model for e in registry_entries() if e.kind == "vocoder"]
    except WeightsError:
        released = []
    names = ", ".join(["auto", *released, "griffinlim"])
    return f"{names}, or a vocoder .pt file (genreshift's, or a MelGAN generator state_dict saved by melgan-neurips)."
