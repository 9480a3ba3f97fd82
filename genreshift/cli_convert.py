"""``genreshift convert``: parse the options, then plan, convert and report through the
library, in one process or as one rank of a torchrun job. A plain function that ``cli.py``
registers; heavy imports happen inside the command."""

from __future__ import annotations

import os
import tempfile
from contextlib import nullcontext
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli_options import (
    batch_size_value,
    Device,
    Quiet,
    fail,
    finite,
    seconds_above_zero,
    seconds_from_zero,
    strength_in_range,
    vocoder_help,
)


class OutputFormat(str, Enum):
    wav = "wav"
    flac = "flac"
    ogg = "ogg"


def convert(
    paths: Annotated[list[Path], typer.Argument(help="Audio files and/or folders (searched recursively).")],
    to: Annotated[Optional[str], typer.Option("--to", "-t", help="Target genre (see `genreshift genres`).")] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Output folder (default: converted/<genre>).")
    ] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="A translator checkpoint file to use.")] = None,
    vocoder: Annotated[str, typer.Option(help=vocoder_help())] = "auto",
    device: Device = "auto",
    batch_size: Annotated[
        str,
        typer.Option(
            metavar="N|auto",
            callback=batch_size_value,
            help="Windows (of 256 frames) per model call; auto: sized by the free GPU memory (16 on a CPU).",
        ),
    ] = "16",
    workers: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            max=256,
            help="Threads that decode, and as many that encode (default: 1 on a CPU, the CPU count minus one on a GPU).",
        ),
    ] = None,
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
        typer.Option(
            min=1.0,
            max=3600.0,
            callback=finite,
            help="Audio converted at a time: bounds memory, whatever the track's length.",
        ),
    ] = 30.0,
    level: Annotated[
        Optional[bool],
        typer.Option(
            "--level/--no-level",
            help="Keep the output's loudness near the input's (off: the models' own level). Default: on, "
            "except for a translator trained with finetune --paired, which keeps the level change it learned.",
            show_default=False,
        ),
    ] = None,
    int8: Annotated[
        bool, typer.Option(help="On a CPU, run the fast vocoder's main layers in int8 (faster; off: float32).")
    ] = True,
    shard: Annotated[
        Optional[str],
        typer.Option(help="Convert only share K of N (K from 0), for job arrays.", envvar="GENRESHIFT_SHARD"),
    ] = None,
    preview: Annotated[
        Optional[float],
        typer.Option(
            metavar="SECONDS",
            callback=seconds_above_zero,
            help="Convert only this many seconds of each track (its loudest stretch), into NAME.preview.EXT.",
        ),
    ] = None,
    preview_start: Annotated[
        Optional[float],
        typer.Option(metavar="SECONDS", callback=seconds_from_zero, help="Take the --preview excerpt from here."),
    ] = None,
    strength: Annotated[
        float,
        typer.Option(
            metavar="S",
            callback=strength_in_range,
            help="How far to move toward the genre: 0 = vocoder only, 1 = as trained, up to 1.5.",
        ),
    ] = 1.0,
    quiet: Quiet = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also show the gain levelling applied to each track.")
    ] = False,
) -> None:
    """Convert audio files to a genre. Exit code 1 if any file failed, 2 for bad options,
    130 on Ctrl-C and 143 on SIGTERM. Runs under torchrun."""
    if overlap >= chunk_frames:
        raise typer.BadParameter("must be smaller than --chunk-frames", param_hint="--overlap")
    if preview_start is not None and preview is None:
        raise typer.BadParameter("needs --preview SECONDS", param_hint="--preview-start")
    if fmt is not None and sample_rate is not None:
        from .audio import FORMATS, rate_problem

        problem = rate_problem(FORMATS[fmt.value][0], sample_rate)
        if problem:
            raise typer.BadParameter(problem, param_hint="--sample-rate")
    from . import ConvertOptions, distrib
    from .shards import parse_shard, process_shares

    try:
        shares = process_shares(parse_shard(shard) if shard else None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None
    # Under torchrun the ranks form a group first: whether this is an elastic restart decides
    # what to skip. Only a few small Python objects travel between ranks: gloo will do.
    with distrib.process_group("gloo"):
        raise typer.Exit(_convert(paths, dry_run, quiet, verbose, report, ConvertOptions(
            genre=to, model=model, vocoder=vocoder, output=output, device=device, batch_size=batch_size,
            workers=workers,
            chunk_frames=chunk_frames, overlap=overlap, stereo=stereo, sample_rate=sample_rate,
            format=fmt.value if fmt else None, segment_seconds=segment_seconds, level=level, int8=int8, shards=shares,
            preview=preview, preview_start=preview_start, strength=strength,
            # a job restarted by torchrun keeps what its first attempt finished
            skip_existing=skip_existing or distrib.restarted(),
        )))  # fmt: skip


def _convert(paths: list[Path], dry_run: bool, quiet: bool, verbose: bool, report: Path | None, options) -> int:
    from . import Converter, distrib, interrupts
    from .display import ConvertProgress, note
    from .errors import GenreshiftError
    from .shards import RankProgress

    # Under torchrun every rank counts its progress into rank 0's bar; only rank 0 has one.
    bar = ConvertProgress(quiet) if distrib.is_main() else None
    progress = bar if distrib.world_size() == 1 else RankProgress(bar)
    try:
        converter = Converter(options, progress)
    except GenreshiftError as exc:
        raise fail(str(exc), exc.exit_code) from None
    if converter.device.type == "cpu":
        distrib.share_cpu_threads()  # torchrun's ranks on one machine share its cores
    if converter.source.note and not quiet and distrib.is_main():
        note(converter.source.note)
    try:
        with interrupts.term_as_interrupt():
            return _run_convert(converter, progress, bar, paths, dry_run, quiet, verbose, report)
    except GenreshiftError as exc:
        raise fail(str(exc), exc.exit_code) from None
    except KeyboardInterrupt:
        raise _interrupted() from None


def _interrupted() -> typer.Exit:
    """Ctrl-C or SIGTERM: one line (under torchrun, where every rank gets the signal, from
    rank 0) and exit 128 + the signal's number."""
    import signal

    from . import distrib, interrupts
    from .display import stderr

    sig = interrupts.first_signal() or signal.SIGINT
    if distrib.is_main():
        stderr.print(f"interrupted ({signal.Signals(sig).name}): finished outputs are kept, unfinished ones left no "
                     "file; rerun with --skip-existing to continue", markup=False, highlight=False)  # fmt: skip
    return typer.Exit(128 + sig)


def _run_convert(converter, progress, bar, paths: list[Path], dry_run: bool, quiet: bool, verbose: bool,
                 report: Path | None) -> int:  # fmt: skip
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
    if report is not None:  # every rank checks, against every share's files: all stop alike
        _check_report_path(report, *converter.batch_files)
    if dry_run:
        shares = distrib.gather(([p.describe() for p in todo], results))
        if not main:
            return 0
        _print_others_failures([done for _, done in shares[1:]])
        lines = [line for mine, _ in shares for line in mine]
        for line in sorted(lines) if ranks > 1 else lines:  # in file order, as the table
            stdout.print(line, markup=False)
        return 1 if problems or any(r.status == "failed" for _, done in shares for r in done) else 0
    # One rank per machine cleans up (also when --skip-existing leaves nothing to do); temp
    # files the other ranks are writing are locked, and fresh ones are never touched.
    stale = converter.remove_stale_temps() if distrib.local_rank() == 0 else []
    if todo and not _output_writable(converter.output_root):
        return 1
    if report is not None and main:
        _check_report_extra()
    if todo:
        converter.load_models()  # before the bar: a download shows its own
    totals = distrib.gather((sum(p.result.duration for p in todo), len(todo), len(stale)))
    seconds, files, removed = (sum(t[i] for t in totals) for i in range(3)) if main else (0.0, 0, 0)
    if removed and not quiet:
        stdout.print(f"removed {removed} temp file(s) left by an interrupted run", markup=False)
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
        stdout.print(summary_table(results, gain=verbose))
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


def _check_report_path(path: Path, inputs: list[Path], outputs: list[Path]) -> None:
    """Never let --report overwrite audio of the batch or a file that is not a report."""
    from .report import report_path_problem

    problem = report_path_problem(path, inputs, outputs)
    if problem:
        raise fail(f"--report {path}: {problem}", 2)


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
