"""The ``genreshift`` command: parses options, then calls the library. Heavy imports
(torch) happen inside the commands, so ``--help`` is instant."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__

app = typer.Typer(
    help="Convert folders of music to another genre.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List, download, check and remove model weights.", no_args_is_help=True)
app.add_typer(models_app, name="models")

Device = Annotated[
    str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.", envvar="GENRESHIFT_DEVICE")
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, max=4096, help="Windows per model call.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]


class OutputFormat(str, Enum):
    wav = "wav"
    flac = "flac"
    ogg = "ogg"


def _finite(value: float | None) -> float | None:
    """Click's ranges let "nan" through (every comparison with NaN is false)."""
    if value is not None and value != value:
        raise typer.BadParameter("must be a number, not nan")
    return value


def _fail(message: str, code: int = 1) -> typer.Exit:
    from .display import error

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


@app.command()
def convert(
    paths: Annotated[list[Path], typer.Argument(help="Audio files and/or folders (searched recursively).")],
    to: Annotated[Optional[str], typer.Option("--to", "-t", help="Target genre (see `genreshift genres`).")] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Output folder (default: converted/<genre>).")
    ] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="A translator checkpoint file to use.")] = None,
    vocoder: Annotated[str, typer.Option(help=_vocoder_help())] = "auto",
    device: Device = "auto",
    batch_size: BatchSize = 16,
    chunk_frames: Annotated[int, typer.Option(min=8, max=4096, help="Mel frames per translator window.")] = 128,
    overlap: Annotated[int, typer.Option(min=0, max=4095, help="Frames shared by neighbouring windows.")] = 32,
    stereo: Annotated[bool, typer.Option(help="Convert each channel separately, not their mean.")] = False,
    sample_rate: Annotated[
        Optional[int], typer.Option(min=1000, max=768000, help="Output sample rate (default: the input's).")
    ] = None,
    fmt: Annotated[
        Optional[OutputFormat], typer.Option("--format", help="Output container (default: the input's).")
    ] = None,
    skip_existing: Annotated[bool, typer.Option(help="Leave outputs that already exist (resume).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only list what would be converted and where.")] = False,
    report: Annotated[
        Optional[Path], typer.Option(help="Also write an HTML page to listen to excerpts and compare mel images.")
    ] = None,
    segment_seconds: Annotated[
        float,
        typer.Option(min=1.0, max=3600.0, callback=_finite,
                     help="Audio converted at a time: bounds memory, whatever the track's length."),
    ] = 60.0,
    level: Annotated[
        bool, typer.Option(help="Keep the output's loudness near the input's (off: the models' own level).")
    ] = True,
    quiet: Quiet = False,
) -> None:
    """Convert audio files to a genre. Exit code 1 if any file failed, 2 for bad options,
    130 on Ctrl-C and 143 on SIGTERM."""
    if overlap >= chunk_frames:
        raise typer.BadParameter("must be smaller than --chunk-frames", param_hint="--overlap")
    if fmt is not None and sample_rate is not None:
        from .audio import FORMATS, rate_problem

        problem = rate_problem(FORMATS[fmt.value][0], sample_rate)
        if problem:
            raise typer.BadParameter(problem, param_hint="--sample-rate")
    from . import ConvertOptions, Converter
    from .device import DeviceError
    from .display import ConvertProgress, note
    from .models import ModelError, UnknownGenreError
    from .registry import WeightsError

    options = ConvertOptions(
        genre=to, model=model, vocoder=vocoder, output=output, device=device, batch_size=batch_size,
        chunk_frames=chunk_frames, overlap=overlap, stereo=stereo, sample_rate=sample_rate,
        format=fmt.value if fmt else None, skip_existing=skip_existing, segment_seconds=segment_seconds, level=level,
    )  # fmt: skip
    progress = ConvertProgress(quiet)
    try:
        converter = Converter(options, progress)
    except (UnknownGenreError, DeviceError) as exc:
        raise _fail(str(exc), 2) from None
    except (ModelError, WeightsError) as exc:
        raise _fail(str(exc)) from None
    if converter.source.note and not quiet:
        note(converter.source.note)
    from . import interrupts

    signals: list[int] = []
    try:
        with interrupts.term_as_interrupt(signals):
            code = _run_convert(converter, progress, paths, dry_run, quiet, report)
    except (ModelError, WeightsError) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        import signal

        from .display import stderr

        sig = signals[0] if signals else signal.SIGINT
        stderr.print(f"interrupted ({signal.Signals(sig).name}): finished outputs are kept, unfinished ones left no "
                     "file; rerun with --skip-existing to continue", markup=False, highlight=False)  # fmt: skip
        raise typer.Exit(128 + sig) from None
    raise typer.Exit(code)


def _run_convert(converter, progress, paths: list[Path], dry_run: bool, quiet: bool, report: Path | None = None) -> int:
    from .display import error, stdout, summary_table

    todo, results, problems = converter.plan(paths)
    for problem in problems:
        error(problem)
    for r in results:
        if r.status == "failed":
            error(r.message)
    if report is not None:
        _check_report_path(report, todo, results)
    if dry_run:
        for p in todo:
            stdout.print(f"{p.track.path} -> {p.output}", markup=False)
        return 1 if problems or any(r.status == "failed" for r in results) else 0
    stale = converter.remove_stale_temps()  # also when --skip-existing leaves nothing to do
    if stale and not quiet:
        stdout.print(f"removed {len(stale)} temp file(s) left by an interrupted run", markup=False)
    if todo and not _output_writable(converter.output_root):
        return 1
    if report is not None:
        _check_report_extra()
    if todo:
        total = sum(p.result.duration for p in todo)
        converter.load_models()  # before the bar: a download shows its own
        with progress.running(total, len(todo)):
            results += converter.convert_planned(todo)
    if not quiet and results:
        stdout.print(summary_table(results))
    failed = [r for r in results if r.status == "failed"]
    if failed and not quiet:
        stdout.print(f"{len(failed)} of {len(results)} file(s) failed:", markup=False)
        for r in failed:
            stdout.print(f"  {r.message}", markup=False)
    mel = converter.mel_config if todo else None  # no models loaded just for the report
    if report is not None and not _write_report(converter, report, results, mel, quiet):
        return 1
    return 1 if failed or problems or not (todo or results) else 0


def _check_report_path(path: Path, todo, results) -> None:
    """Never let --report overwrite audio of the batch or a file that is not a report."""
    from .report import report_path_problem

    inputs = [p.track.path for p in todo] + [r.source for r in results]
    outputs = [p.output for p in todo] + [r.output for r in results if r.output is not None]
    problem = report_path_problem(path, inputs, outputs)
    if problem:
        raise _fail(f"--report {path}: {problem}", 2)


def _check_report_extra() -> None:
    """--report without matplotlib: one line on how to get the images; the players still work."""
    from .display import stderr
    from .report import MISSING_MATPLOTLIB, matplotlib_available

    if not matplotlib_available():
        stderr.print(MISSING_MATPLOTLIB, markup=False, highlight=False)


def _write_report(converter, path: Path, results, mel, quiet: bool) -> bool:
    from .display import error, stdout
    from .report import settings_of, write_report

    try:
        write_report(path, results, settings_of(converter), mel)
    except Exception as exc:  # the files are converted; a failed page is one line, not a traceback
        error(f"{path}: cannot write the report ({getattr(exc, 'strerror', None) or exc})")
        return False
    if not quiet:
        stdout.print(f"report: {path}", markup=False)
    return True


def _output_writable(root: Path) -> bool:
    from .display import error

    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".genreshift-write-test"
        probe.touch()
        probe.unlink()
        return True
    except OSError as exc:
        error(f"{root}: output folder is not writable ({exc.strerror or exc})")
        return False


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


@models_app.command("list")
def models_list() -> None:
    """Released models (with cache state) and your finetuned ones."""
    from rich.table import Table

    from .display import stdout
    from . import registry

    table = Table("model", "kind", "genre", "size", "state", "file")
    for e in registry.registry_entries():
        table.add_row(e.model, e.kind, e.genre or "", f"{e.size / 1e6:.1f} MB", registry.status(e), e.file)
    for m in registry.local_models():
        table.add_row(m.name, "translator", m.name, f"{m.path.stat().st_size / 1e6:.1f} MB", "finetuned", str(m.path))
    stdout.print(table)


def _entry(name: str):
    from . import registry

    entry = registry.find_entry(name)
    if entry is None:
        names = ", ".join(e.model for e in registry.registry_entries()) or "none"
        raise _fail(f"unknown model '{name}'; released models: {names}", 2)
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
        raise _fail("name a model, or use --all", 2)
    failed = 0
    for e in entries:
        try:
            typer.echo(f"{e.model}: {registry.fetch(e)}")
        except registry.WeightsError as exc:
            _fail(str(exc))
            failed += 1
    raise typer.Exit(1 if failed else 0)


@models_app.command("path")
def models_path(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Print the local path of a model's weights, fetching them if needed."""
    from . import registry

    try:
        typer.echo(str(registry.fetch(_entry(name), progress=False)))
    except registry.WeightsError as exc:
        raise _fail(str(exc)) from None


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
        raise _fail(f"{bad} cached file(s) fail their sha256; `genreshift models pull` fetches them again")


@models_app.command("rm")
def models_rm(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Delete a model's cached copy (a bundled copy stays)."""
    from . import registry

    removed = registry.remove(_entry(name))
    typer.echo(f"{name}: {'removed from cache' if removed else 'not in cache'}")


# The training commands live in their own module; importing it registers them on ``app``.
from . import cli_train  # noqa: E402,F401
