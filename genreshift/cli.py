"""The ``genreshift`` command: parses options, then calls the library. Heavy imports
(torch) happen inside the commands, so ``--help`` is instant."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import __version__

app = typer.Typer(
    help="Convert folders of music to another genre.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

Device = Annotated[
    str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.", envvar="GENRESHIFT_DEVICE")
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, max=4096, help="Windows per model call.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]


def _finite(value: float | None) -> float | None:
    """Click's ranges let "nan" through (every comparison with NaN is false)."""
    if value is not None and value != value:
        raise typer.BadParameter("must be a number, not nan")
    return value


def _fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one error line (under torchrun by rank 0 only) and exit ``code``."""
    from . import distrib
    from .display import error

    if distrib.is_main():
        error(message)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"genreshift {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """genreshift: turn whole folders of music into another genre."""


def _vocoder_help() -> str:
    """What --vocoder takes: the released vocoders are read from the registry (no torch, no
    download), so a value is offered only when a file for it exists."""
    from .registry import WeightsError, registry_entries

    try:
        released = [e.model for e in registry_entries() if e.kind == "vocoder"]
    except WeightsError:
        released = []
    names = ", ".join(["auto", *released, "griffinlim"])
    return f"{names}, or a vocoder .pt file (genreshift's, or a MelGAN generator state_dict saved by melgan-neurips)."


# The commands live in their own modules; importing them registers them on ``app``, in the
# order ``--help`` lists them.
from . import cli_convert  # noqa: E402,F401


@app.command()
def genres() -> None:
    """List the genres --to accepts and where each comes from."""
    from .display import stdout
    from .models import known_genres

    found = known_genres()
    if not found:
        stdout.print("No genres installed.", markup=False)
    for name, source in sorted(found.items()):
        stdout.print(f"{name:16} {source}", markup=False)


from . import cli_models, cli_train  # noqa: E402,F401
