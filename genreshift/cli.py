"""The ``genreshift`` command: parses options, then calls the library. Heavy imports
(torch) happen inside the commands, so ``--help`` is instant."""

from __future__ import annotations

import os
import tempfile
from contextlib import nullcontext
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

Device = Annotated[
    str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.", envvar="GENRESHIFT_DEVICE")
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Windows per model call.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]


class OutputFormat(str, Enum):
    wav = "wav"
    flac = "flac"
    ogg = "ogg"


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
    chunk_frames: Annotated[int, typer.Option(min=8, help="Mel frames per translator window.")] = 128,
    overlap: Annotated[int, typer.Option(min=0, help="Frames shared by neighbouring windows.")] = 32,
    stereo: Annotated[bool, typer.Option(help="Convert each channel separately, not their mean.")] = False,
    sample_rate: Annotated[Optional[int], typer.Option(min=1, help="Output sample rate (default: the input's).")] = None,
    fmt: Annotated[
        Optional[OutputFormat], typer.Option("--format", help="Output container (default: the input's).")
    ] = None,
    skip_existing: Annotated[bool, typer.Option(help="Leave outputs that already exist (resume).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only list what would be converted and where.")] = False,
    report: Annotated[
        Optional[Path], typer.Option(help="Also write an HTML page to listen to excerpts and compare mel images.")
    ] = None,
    segment_seconds: Annotated[
        float, typer.Option(min=1.0, help="Audio converted at a time: bounds memory, whatever the track's length.")
    ] = 60.0,
    shard: Annotated[
        Optional[str], typer.Option(help="Convert only share K of N (K from 0), for job arrays.", envvar="GENRESHIFT_SHARD")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Convert audio files to a genre. Exit code 1 if any file failed. Runs under torchrun."""
    if overlap >= chunk_frames:
        raise typer.BadParameter("must be smaller than --chunk-frames", param_hint="--overlap")
    from . import ConvertOptions, distrib
    from .shards import parse_shard, process_shares

    try:
        shares = process_shares(parse_shard(shard) if shard else None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None
    # Under torchrun the ranks form a group first: whether this is an elastic restart decides
    # what to skip. Only a few small Python objects travel between ranks: gloo will do.
    with distrib.process_group("gloo"):
        raise typer.Exit(_convert(paths, dry_run, quiet, report, ConvertOptions(
            genre=to, model=model, vocoder=vocoder, output=output, device=device, batch_size=batch_size,
            chunk_frames=chunk_frames, overlap=overlap, stereo=stereo, sample_rate=sample_rate,
            format=fmt.value if fmt else None, segment_seconds=segment_seconds, shards=shares,
            # a job restarted by torchrun keeps what its first attempt finished
            skip_existing=skip_existing or distrib.restarted(),
        )))  # fmt: skip


def _convert(paths: list[Path], dry_run: bool, quiet: bool, report: Path | None, options) -> int:
    from . import Converter, distrib
    from .device import DeviceError
    from .display import ConvertProgress, note
    from .models import ModelError, UnknownGenreError
    from .registry import WeightsError
    from .shards import RankProgress

    # Under torchrun every rank counts its progress into rank 0's bar; only rank 0 has one.
    bar = ConvertProgress(quiet) if distrib.is_main() else None
    progress = bar if distrib.world_size() == 1 else RankProgress(bar)
    try:
        converter = Converter(options, progress)
    except (UnknownGenreError, DeviceError) as exc:
        raise _fail(str(exc), 2) from None
    except (ModelError, WeightsError) as exc:
        raise _fail(str(exc)) from None
    if converter.device.type == "cpu":
        distrib.share_cpu_threads()  # torchrun's ranks on one machine share its cores
    if converter.source.note and not quiet and distrib.is_main():
        note(converter.source.note)
    try:
        return _run_convert(converter, progress, bar, paths, dry_run, quiet, report)
    except (ModelError, WeightsError) as exc:
        raise _fail(str(exc)) from None


def _run_convert(converter, progress, bar, paths: list[Path], dry_run: bool, quiet: bool, report: Path | None) -> int:
    """Plan, convert, report. Under torchrun every rank converts its share and rank 0 speaks
    for all: one progress bar, one table, the exit code (the other ranks exit 0).

    Every rank must reach every distrib.gather below: a rank leaves early only by failing,
    which makes torchrun stop them all."""
    from . import distrib
    from .display import error, stdout, summary_table

    main, ranks = distrib.is_main(), distrib.world_size()
    todo, results, problems = converter.plan(paths)
    if main:
        for message in problems + [r.message for r in results if r.status == "failed"]:
            error(message)
    if dry_run:
        shares = distrib.gather(([f"{p.track.path} -> {p.output}" for p in todo], results))
        if not main:
            return 0
        _print_others_failures([done for _, done in shares[1:]])
        lines = [line for mine, _ in shares for line in mine]
        for line in sorted(lines) if ranks > 1 else lines:  # in file order, as the table
            stdout.print(line, markup=False)
        return 1 if problems or any(r.status == "failed" for _, done in shares for r in done) else 0
    if todo and not _output_writable(converter.output_root):
        return 1
    if report is not None and main:
        _check_report_extra()
    if todo:
        converter.load_models()  # before the bar: a download shows its own
    totals = distrib.gather((sum(p.result.duration for p in todo), len(todo)))
    seconds, files = (sum(t[0] for t in totals), sum(t[1] for t in totals)) if main else (0.0, 0)
    with bar.running(seconds, files) if main and files else nullcontext():
        if todo:
            results += converter.convert_planned(todo)
        if ranks > 1:
            progress.finish()
    shares = distrib.gather(results)
    if not main:
        return 0
    if ranks > 1:
        _print_others_failures(shares[1:])
        results = sorted((r for share in shares for r in share), key=lambda r: str(r.source))
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
    return 1 if failed or problems or not results else 0


def _print_others_failures(shares) -> None:
    """Rank 0 prints the failures the other ranks met (they print nothing themselves)."""
    from .display import error

    for share in shares:
        for r in share:
            if r.status == "failed":
                error(r.message)


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
        fd, probe = tempfile.mkstemp(prefix=".genreshift-write-test-", dir=root)  # unique: ranks probe at once
        os.close(fd)
        os.unlink(probe)
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


# The models and training commands live in their own modules; importing them registers them on ``app``.
from . import cli_models, cli_train  # noqa: E402,F401
