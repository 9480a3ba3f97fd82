"""``genreshift models``: list, download, check and remove model weights. ``cli.py`` adds
this sub-app; heavy imports happen inside the commands."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .cli_options import fail

models_app = typer.Typer(help="List, download, check and remove model weights.", no_args_is_help=True)


@models_app.command("list")
def models_list() -> None:
    """Released models (with cache state) and your finetuned ones."""
    from rich.table import Table

    from .display import stdout
    from . import registry

    table = Table("model", "kind", "genre", "version", "size", "state", "file")
    for e in registry.registry_entries():
        table.add_row(e.model, e.kind, e.genre or "", e.version, f"{e.size / 1e6:.1f} MB", registry.status(e), e.file)
    for m in registry.local_models():
        size = f"{m.path.stat().st_size / 1e6:.1f} MB"
        table.add_row(m.name, "translator", m.name, "", size, "finetuned", str(m.path))
    stdout.print(table)


def _entry(name: str):
    from . import registry

    entry = registry.find_entry(name)
    if entry is None:
        names = ", ".join(e.model for e in registry.registry_entries()) or "none"
        raise fail(f"unknown model '{name}'; released models: {names}", 2)
    return entry


@models_app.command("pull")
def models_pull(
    names: Annotated[Optional[list[str]], typer.Argument(help="Model names.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every released model, for offline use.")] = False,
) -> None:
    """Download weights into the cache (checked against their sha256)."""
    from . import registry

    entries = registry.registry_entries() if all_ else [_entry(n) for n in names or []]
    if not entries:
        raise fail("name a model, or use --all", 2)
    failed = 0
    for e in entries:
        try:
            typer.echo(f"{e.model}: {registry.fetch(e)}")
        except registry.WeightsError as exc:
            fail(str(exc))
            failed += 1
    raise typer.Exit(1 if failed else 0)


@models_app.command("path")
def models_path(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Print the local path of a model's weights, fetching them if needed."""
    from . import registry

    try:
        typer.echo(str(registry.fetch(_entry(name), progress=False)))
    except registry.WeightsError as exc:
        raise fail(str(exc)) from None


@models_app.command("verify")
def models_verify(names: Annotated[Optional[list[str]], typer.Argument(help="Model names.")] = None) -> None:
    """Check the sha256 of every cached and bundled copy; exit 1 if any is corrupt."""
    from . import registry

    entries = [_entry(n) for n in names] if names else registry.registry_entries()
    bad = 0
    for e in entries:
        state = registry.status(e)
        typer.echo(f"{e.model:12} {state}")
        bad += state == "corrupt"
    if bad:
        raise fail(f"{bad} cached file(s) fail their sha256; `genreshift models pull` fetches them again")


@models_app.command("rm")
def models_rm(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Delete a model's cached copy (a bundled copy stays)."""
    from . import registry

    removed = registry.remove(_entry(name))
    typer.echo(f"{name}: {'removed from cache' if removed else 'not in cache'}")
