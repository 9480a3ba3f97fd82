"""The ``genreshift`` command: parses options, then calls the library. Heavy imports
(torch) happen inside the commands, so ``--help`` is instant.

Every command is a plain function in its own module (fastapi-cli's ``commands/``); this
module only builds the app and registers them, in the order ``--help`` lists them. Shared
option aliases and ``fail()`` live in ``cli_options``."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from . import __version__, cli_convert, cli_models
from .train import cli as train_cli

app = typer.Typer(
    help="Convert folders of music to another genre.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


def version_text() -> str:
    """The package version, then one line per model in the registry: which version of each
    model ``convert`` uses, and the release it shipped with. Reads only the registry's JSON
    (no torch), so it stays instant."""
    from .errors import WeightsError
    from .registry import registry_entries

    lines = [f"genreshift {__version__}"]
    try:
        entries = registry_entries()
    except WeightsError as exc:
        return "\n".join(lines + [f"models: {exc}"])
    lines.append(f"models ({os.environ.get('GENRESHIFT_REGISTRY') or 'bundled registry'}):")
    for e in entries:
        released = f"released with {e.package_version}" if e.package_version else "release not recorded"
        lines.append(f"  {e.model:12} {e.kind:10} {e.version or '?':4} {e.file:20} {released}")
    return "\n".join(lines)


@app.callback()
def main(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and the models' versions."),
    ] = None,
) -> None:
    """genreshift: turn whole folders of music into another genre."""


def genres() -> None:
    """List the genres --to accepts and where each comes from."""
    from .display import stdout
    from .pretrained import known_genres

    found = known_genres()
    if not found:
        stdout.print("No genres installed.", markup=False)
    for name, source in sorted(found.items()):
        stdout.print(f"{name:16} {source}", markup=False)


app.command()(cli_convert.convert)
app.command()(genres)
app.add_typer(cli_models.models_app, name="models")
app.command("train-vocoder")(train_cli.train_vocoder)
app.command()(train_cli.finetune)
