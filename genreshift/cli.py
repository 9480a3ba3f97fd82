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
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Windows per model call.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]


class OutputFormat(str, Enum):
    wav = "wav"
    flac = "flac"
    ogg = "ogg"


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


@app.command()
def convert(
    paths: Annotated[list[Path], typer.Argument(help="Audio files and/or folders (searched recursively).")],
    to: Annotated[Optional[str], typer.Option("--to", "-t", help="Target genre (see `genreshift genres`).")] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Output folder (default: converted/<genre>).")
    ] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="A translator checkpoint file to use.")] = None,
    vocoder: Annotated[str, typer.Option(help="auto, fast, melgan, griffinlim, or a .pt file.")] = "auto",
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
    quiet: Quiet = False,
) -> None:
    """Convert audio files to a genre. Exit code 1 if any file failed."""
    if overlap >= chunk_frames:
        raise typer.BadParameter("must be smaller than --chunk-frames", param_hint="--overlap")
    from .device import DeviceError
    from .models import ModelError, UnknownGenreError
    from .pipeline import ConvertOptions, Converter
    from .registry import WeightsError

    options = ConvertOptions(
        genre=to, model=model, vocoder=vocoder, output=output, device=device, batch_size=batch_size,
        chunk_frames=chunk_frames, overlap=overlap, stereo=stereo, sample_rate=sample_rate,
        format=fmt.value if fmt else None, skip_existing=skip_existing, segment_seconds=segment_seconds,
    )  # fmt: skip
    try:
        converter = Converter(options)
    except (UnknownGenreError, DeviceError) as exc:
        raise _fail(str(exc), 2) from None
    except ModelError as exc:
        raise _fail(str(exc)) from None
    try:
        code = _run_convert(converter, paths, dry_run, quiet, report)
    except (ModelError, WeightsError) as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


def _run_convert(converter, paths: list[Path], dry_run: bool, quiet: bool, report: Path | None = None) -> int:
    from .display import ConvertProgress, error, stdout, summary_table

    todo, results, problems = converter.plan(paths)
    for problem in problems:
        error(problem)
    for r in results:
        if r.status == "failed":
            error(r.message)
    if dry_run:
        for p in todo:
            stdout.print(f"{p.track.path} -> {p.output}", markup=False)
        return 1 if problems or any(r.status == "failed" for r in results) else 0
    if todo and not _output_writable(converter.output_root):
        return 1
    if report is not None:
        _check_report_extra()
    if todo:
        total = sum(p.result.duration for p in todo)
        converter.load_models()
        with ConvertProgress(total, len(todo), quiet) as progress:
            converter.progress = progress
            results += converter.convert_planned(todo)
    if not quiet and results:
        stdout.print(summary_table(results))
    failed = [r for r in results if r.status == "failed"]
    if failed and not quiet:
        stdout.print(f"{len(failed)} of {len(results)} file(s) failed:", markup=False)
        for r in failed:
            stdout.print(f"  {r.message}", markup=False)
    if report is not None and not _write_report(converter, report, results, quiet):
        return 1
    return 1 if failed or problems or not (todo or results) else 0


def _check_report_extra() -> None:
    """--report without matplotlib: one line on how to get the images; the players still work."""
    from .display import stderr
    from .report import MISSING_MATPLOTLIB, matplotlib_available

    if not matplotlib_available():
        stderr.print(MISSING_MATPLOTLIB, markup=False, highlight=False)


def _write_report(converter, path: Path, results, quiet: bool) -> bool:
    from .display import error, stdout
    from .report import settings_of, write_report

    try:
        write_report(path, results, settings_of(converter), getattr(converter, "mel_cfg", None))
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


# -- training -------------------------------------------------------------------------------


class VocoderArch(str, Enum):
    fast = "fast"
    melgan = "melgan"


class DiscKind(str, Enum):
    msd = "msd"
    mpd = "mpd"
    both = "msd+mpd"


class GanLoss(str, Enum):
    lsgan = "lsgan"
    hinge = "hinge"


def _train(run, options):
    """Run a trainer; bad input is one line and exit 1 (printed by rank 0 only under torchrun)."""
    import os

    from .checkpoint import CheckpointError
    from .device import DeviceError
    from .models import ModelError
    from .registry import WeightsError
    from .training import Interrupted, TrainingError

    def fail(message: str, code: int) -> typer.Exit:
        return _fail(message, code) if os.environ.get("RANK", "0") == "0" else typer.Exit(code)

    try:
        result = run(options)
        return result if os.environ.get("RANK", "0") == "0" else None
    except DeviceError as exc:
        raise fail(str(exc), 2) from None
    except (TrainingError, CheckpointError, ModelError, WeightsError) as exc:
        raise fail(str(exc), 1) from None
    except (Interrupted, KeyboardInterrupt) as exc:
        from .display import stderr

        if os.environ.get("RANK", "0") == "0":
            stderr.print(str(exc) or "interrupted before training started; nothing saved", markup=False)
        raise typer.Exit(130) from None


Steps = Annotated[int, typer.Option(min=1, help="Train until this step (a resumed run continues to it).")]
Resume = Annotated[bool, typer.Option(help="Continue the run in the run folder from last.pt.")]
Force = Annotated[bool, typer.Option(help="Start over even if the run folder holds a run.")]
EvalEvery = Annotated[int, typer.Option(min=1, help="Steps between validations (figures, best.pt, samples).")]
SaveEvery = Annotated[int, typer.Option(min=1, help="Steps between checkpoints (last.pt and the exported model).")]
LogEvery = Annotated[int, typer.Option(min=1, help="Steps between loss lines in log.jsonl (and on a non-terminal).")]
OptInt = Annotated[Optional[int], typer.Option(min=1)]
MaxSeconds = Annotated[
    Optional[float], typer.Option(min=0.1, help="Use at most this many seconds of each track (faster caching).")
]
CacheDir = Annotated[
    Optional[Path], typer.Option(help="Decoded-track cache (default: <GENRESHIFT_HOME>/cache/training).")
]


@app.command("train-vocoder")
def train_vocoder(
    audio: Annotated[list[Path], typer.Option("--audio", help="Folder or file of music; repeat for more.")],
    arch: Annotated[VocoderArch, typer.Option(help="fast (Vocos-style, ends in an iSTFT) or melgan.")],
    name: Annotated[str, typer.Option(help="Run name: runs/NAME and NAME.pt by default.")],
    steps: Steps = 100_000,
    batch_size: Annotated[int, typer.Option(min=1, help="Segments per step (per process under torchrun).")] = 16,
    segment_frames: Annotated[int, typer.Option(min=9, help="Mel frames per training segment.")] = 32,
    lr: Annotated[float, typer.Option(min=0.0, help="AdamW learning rate of G and D.")] = 2e-4,
    device: Device = "auto",
    resume: Resume = False,
    force: Force = False,
    out: Annotated[Optional[Path], typer.Option(help="Run folder (default: runs/NAME).")] = None,
    export: Annotated[Optional[Path], typer.Option(help="Inference checkpoint (default: <out>/NAME.pt).")] = None,
    init: Annotated[
        Optional[Path], typer.Option(help="Start from this vocoder checkpoint's weights (e.g. `models path fast`).")
    ] = None,
    eval_every: EvalEvery = 1000,
    save_every: SaveEvery = 1000,
    log_every: LogEvery = 50,
    gan_start: Annotated[int, typer.Option(min=0, help="Reconstruction-only steps before D joins.")] = 1000,
    gan_loss: Annotated[GanLoss, typer.Option(help="Adversarial loss.")] = GanLoss.lsgan,
    disc: Annotated[Optional[DiscKind], typer.Option(help="Discriminators (default msd+mpd).")] = None,
    disc_channels: Annotated[Optional[int], typer.Option(min=4, help="Discriminator base width (default 16).")] = None,
    dim: Annotated[Optional[int], typer.Option(min=1, help="fast: channels (default 128).")] = None,
    intermediate_dim: Annotated[Optional[int], typer.Option(min=1, help="fast: hidden width (default 384).")] = None,
    n_blocks: Annotated[Optional[int], typer.Option(min=1, help="fast: ConvNeXt blocks (default 4).")] = None,
    ngf: Annotated[Optional[int], typer.Option(min=1, help="melgan: base channels (default 32).")] = None,
    n_residual_layers: Annotated[Optional[int], typer.Option(min=1, help="melgan: res. layers (default 3).")] = None,
    mel_weight: Annotated[float, typer.Option(help="Weight of the log-mel L1 loss.")] = 45.0,
    stft_weight: Annotated[float, typer.Option(help="Weight of the multi-resolution STFT loss.")] = 1.0,
    adv_weight: Annotated[float, typer.Option(help="Weight of the adversarial loss.")] = 1.0,
    fm_weight: Annotated[float, typer.Option(help="Weight of feature matching.")] = 2.0,
    val_segments: Annotated[int, typer.Option(min=1, help="Held-out segments for validation.")] = 8,
    max_seconds_per_track: MaxSeconds = None,
    cache_dir: CacheDir = None,
    seed: Annotated[int, typer.Option(help="Seed of weights and crops.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Train a vocoder (log-mel -> audio) on your music; resumable, runs under torchrun."""
    from .config import TrainConfig, VocoderLossWeights, VocoderTrainConfig
    from .vocoder_training import VocoderTrainOptions, run

    sizes = dict(dim=dim, intermediate_dim=intermediate_dim, n_blocks=n_blocks, ngf=ngf)
    sizes.update(n_residual_layers=n_residual_layers, disc=disc.value if disc else None, disc_channels=disc_channels)
    options = VocoderTrainOptions(
        audio=tuple(audio), arch=arch.value, name=name, out=out, export=export, device=device, resume=resume,
        force=force, quiet=quiet, init=init, cache_dir=cache_dir, overrides=sizes,
        train=TrainConfig(steps=steps, batch_size=batch_size, eval_every=eval_every, save_every=save_every,
                          log_every=log_every, val_crops=val_segments, seed=seed,
                          max_seconds_per_track=max_seconds_per_track),
        hparams=VocoderTrainConfig(lr=lr, segment_frames=segment_frames, gan_start=gan_start, gan_loss=gan_loss.value),
        weights=VocoderLossWeights(mel=mel_weight, stft=stft_weight, adversarial=adv_weight, feature=fm_weight),
    )  # fmt: skip
    result = _train(run, options)
    if result is not None and not quiet:
        from .display import stdout

        figures = ", ".join(f"{k} {v:.4f}" for k, v in result.val.items())
        stdout.print(f"step {result.step}: {figures}", markup=False)
        use = f"genreshift convert ... --vocoder {result.export}"
        stdout.print(f"vocoder saved to {result.export} (use: {use})", markup=False)


@app.command()
def finetune(
    source: Annotated[Path, typer.Option(help="Folder of music to convert from.")],
    target: Annotated[Path, typer.Option(help="Folder of music in the style to learn.")],
    name: Annotated[str, typer.Option(help="Name of the new genre: `convert --to NAME`.")],
    init: Annotated[str, typer.Option(help="Start from: scratch, a genre, or a translator .pt file.")] = "scratch",
    steps: Steps = 20000,
    batch_size: Annotated[int, typer.Option(min=2, help="Crops per folder per step (per process with torchrun).")] = 16,
    device: Device = "auto",
    resume: Resume = False,
    force: Annotated[bool, typer.Option(help="Allow a built-in genre's name; replace an existing model/run.")] = False,
    out: Annotated[
        Optional[Path], typer.Option(help="Folder for NAME.pt, or a .pt path (default: the user model folder).")
    ] = None,
    run_dir: Annotated[
        Optional[Path], typer.Option(help="Checkpoints, samples, log (default: <GENRESHIFT_HOME>/runs/NAME).")
    ] = None,
    eval_every: EvalEvery = 500,
    save_every: SaveEvery = 500,
    log_every: LogEvery = 50,
    paired: Annotated[bool, typer.Option(help="Add an L1 term for files that match by relative path.")] = False,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate of G and S.")] = 1e-4,
    lr_d: Annotated[float, typer.Option(min=0.0, help="Adam learning rate of D.")] = 1e-4,
    adv_weight: Annotated[float, typer.Option(help="Weight of the hinge adversarial loss.")] = 1.0,
    travel_weight: Annotated[float, typer.Option(help="Weight of the TraVeL loss (keeps content).")] = 10.0,
    siamese_weight: Annotated[float, typer.Option(help="Weight of the siamese margin loss.")] = 10.0,
    identity_weight: Annotated[float, typer.Option(help="Weight of |G(target) - target|.")] = 0.5,
    paired_weight: Annotated[float, typer.Option(help="Weight of the --paired L1 term.")] = 1.0,
    margin: Annotated[float, typer.Option(min=0.0, help="Siamese margin (delta).")] = 2.0,
    parts: Annotated[int, typer.Option(min=1, help="Parts each crop is split into for G.")] = 3,
    channels: Annotated[Optional[int], typer.Option(min=1, help="G width (default 128).")] = None,
    blocks: Annotated[Optional[int], typer.Option(min=1, help="G residual blocks (default 6).")] = None,
    kernel_size: Annotated[Optional[int], typer.Option(min=1, help="G kernel size (default 5).")] = None,
    window_frames: Annotated[Optional[int], typer.Option(min=8, help="Crop length, mel frames (default 128).")] = None,
    disc_channels: Annotated[Optional[int], typer.Option(min=1, help="D width (default 128).")] = None,
    siamese_channels: Annotated[Optional[int], typer.Option(min=1, help="S width (default 128).")] = None,
    siamese_dim: Annotated[Optional[int], typer.Option(min=1, help="S embedding size (default 128).")] = None,
    val_crops: Annotated[int, typer.Option(min=1, help="Held-out crops per folder.")] = 8,
    max_seconds_per_track: MaxSeconds = None,
    cache_dir: CacheDir = None,
    seed: Annotated[int, typer.Option(help="Seed of weights and crops.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Train a new genre from a source folder to a target folder (TraVeLGAN, as in MelGAN-VC)."""
    from .config import FinetuneConfig, TrainConfig, TravelLossWeights
    from .finetune import FinetuneOptions, run

    sizes = dict(channels=channels, n_blocks=blocks, kernel_size=kernel_size, window_frames=window_frames)
    sizes.update(disc_channels=disc_channels, siamese_channels=siamese_channels, siamese_dim=siamese_dim)
    options = FinetuneOptions(
        source=source, target=target, name=name, init=init, out=out, run_dir=run_dir, paired=paired, device=device,
        resume=resume, force=force, quiet=quiet, cache_dir=cache_dir, overrides=sizes,
        train=TrainConfig(steps=steps, batch_size=batch_size, eval_every=eval_every, save_every=save_every,
                          log_every=log_every, val_crops=val_crops, seed=seed,
                          max_seconds_per_track=max_seconds_per_track),
        hparams=FinetuneConfig(lr=lr, lr_d=lr_d, parts=parts),
        weights=TravelLossWeights(adversarial=adv_weight, travel=travel_weight, siamese=siamese_weight,
                                  identity=identity_weight, paired=paired_weight, margin=margin),
    )  # fmt: skip
    result = _train(run, options)
    if result is not None and not quiet:
        from .display import stdout

        stdout.print(f"step {result.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.val.items()), markup=False)
        use = f"--to {name}" if result.in_user_models else f"--model {result.model}"
        stdout.print(f"model saved to {result.model} (use: genreshift convert ... {use})", markup=False)
