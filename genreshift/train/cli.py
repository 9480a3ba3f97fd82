"""The training commands of ``genreshift`` (``train-vocoder``, ``finetune``): plain functions
that parse options and call ``train.vocoder.run`` / ``train.finetune.run``; ``cli.py``
registers them. Heavy imports happen inside the commands."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..cli_options import Device, Quiet, fail


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


class Phase(str, Enum):
    direct = "direct"
    integrated = "integrated"


def _train(run, options):
    """Run a trainer; bad input is one line and its error's exit code (printed by rank 0 only
    under torchrun), Ctrl-C or SIGTERM says what was saved and exits 130 or 143, as convert."""
    from .. import distrib, interrupts
    from ..errors import GenreshiftError, Interrupted

    try:
        result = run(options)
        return result if distrib.is_main() else None
    except (Interrupted, KeyboardInterrupt) as exc:
        from ..display import stderr

        if distrib.is_main():
            stderr.print(str(exc) or "interrupted before training started; nothing saved", markup=False)
        raise typer.Exit(interrupts.exit_code()) from None
    except GenreshiftError as exc:
        raise fail(str(exc), exc.exit_code) from None


Steps = Annotated[int, typer.Option(min=1, help="Train until this step (a resumed run continues to it).")]
Resume = Annotated[bool, typer.Option(help="Continue the run in the run folder from last.pt.")]
Force = Annotated[bool, typer.Option(help="Start over even if the run folder holds a run.")]
EvalEvery = Annotated[int, typer.Option(min=1, help="Steps between validations (figures, best.pt, samples).")]
SaveEvery = Annotated[int, typer.Option(min=1, help="Steps between checkpoints (last.pt and the exported model).")]
LogEvery = Annotated[int, typer.Option(min=1, help="Steps between loss lines in log.jsonl (and on a non-terminal).")]


def OptWeight(term: str, default: str):  # noqa: N802 - an Annotated alias factory
    return Annotated[Optional[float], typer.Option(min=0.0, help=f"Weight of the {term} (default {default}).")]


MaxSeconds = Annotated[
    Optional[float], typer.Option(min=0.1, help="Use at most this many seconds of each track (faster caching).")
]
MaxMinutes = Annotated[
    Optional[float],
    typer.Option(
        min=0.01, help="Stop after this many minutes of training, or at --steps if sooner; saves as at the end."
    ),
]
CacheDir = Annotated[
    Optional[Path], typer.Option(help="Decoded-track cache (default: <GENRESHIFT_HOME>/cache/training).")
]


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
    magnitude_prior: Annotated[
        Optional[bool], typer.Option(help="fast: predict magnitude as a correction of the mel (new models: on).")
    ] = None,
    refine_iters: Annotated[
        Optional[int], typer.Option(min=0, help="fast: Griffin-Lim iterations at inference (new models: 8).")
    ] = None,
    mel_iters: Annotated[
        Optional[int], typer.Option(min=0, help="fast: then iterations that hold the input mel (new models: 4).")
    ] = None,
    phase: Annotated[
        Optional[Phase], typer.Option(help="fast: how the net gives the phase (docs/training.md; new: direct).")
    ] = None,
    ngf: Annotated[Optional[int], typer.Option(min=1, help="melgan: base channels (default 32).")] = None,
    n_residual_layers: Annotated[Optional[int], typer.Option(min=1, help="melgan: res. layers (default 3).")] = None,
    mel_weight: Annotated[float, typer.Option(help="Weight of the log-mel L1 loss.")] = 45.0,
    stft_weight: Annotated[float, typer.Option(help="Weight of the multi-resolution STFT loss.")] = 1.0,
    low_band_weight: Annotated[
        float, typer.Option(min=0.0, help="Weight of the STFT log-magnitude L1 below 4 kHz alone.")
    ] = 0.0,
    magnitude_weight: Annotated[float, typer.Option(help="fast: weight of its magnitude loss.")] = 10.0,
    adv_weight: Annotated[float, typer.Option(help="Weight of the adversarial loss.")] = 1.0,
    fm_weight: Annotated[float, typer.Option(help="Weight of feature matching.")] = 2.0,
    ip_weight: Annotated[float, typer.Option(min=0.0, help="fast: instantaneous phase loss (APNet).")] = 0.0,
    gd_weight: Annotated[float, typer.Option(min=0.0, help="fast: group delay loss (APNet).")] = 0.0,
    iaf_weight: Annotated[
        float, typer.Option(min=0.0, help="fast: instantaneous angular frequency loss (APNet).")
    ] = 0.0,
    consistency_weight: Annotated[
        float, typer.Option(min=0.0, help="fast: STFT consistency of the predicted spectrum.")
    ] = 0.0,
    output_phase_weight: Annotated[
        float, typer.Option(min=0.0, help="fast, integrated: how its output phase turns, against the input's.")
    ] = 0.0,
    train_refinement: Annotated[
        bool, typer.Option(help="fast: run its --refine-iters/--mel-iters in training too (losses after them).")
    ] = False,
    val_segments: Annotated[int, typer.Option(min=1, help="Held-out segments for validation.")] = 8,
    max_seconds_per_track: MaxSeconds = None,
    max_minutes: MaxMinutes = None,
    cache_dir: CacheDir = None,
    seed: Annotated[int, typer.Option(help="Seed of weights and crops.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Train a vocoder (log-mel -> audio) on your music; resumable, runs under torchrun."""
    from .config import TrainConfig, VocoderLossWeights, VocoderTrainConfig
    from .vocoder import VocoderTrainOptions, run

    sizes = dict(dim=dim, intermediate_dim=intermediate_dim, n_blocks=n_blocks, ngf=ngf)
    sizes.update(
        magnitude_prior=magnitude_prior,
        refine_iters=refine_iters,
        mel_iters=mel_iters,
        phase=phase.value if phase else None,
    )
    sizes.update(n_residual_layers=n_residual_layers, disc=disc.value if disc else None, disc_channels=disc_channels)
    options = VocoderTrainOptions(
        audio=tuple(audio), arch=arch.value, name=name, out=out, export=export, device=device, resume=resume,
        force=force, quiet=quiet, init=init, cache_dir=cache_dir, overrides=sizes,
        train=TrainConfig(steps=steps, batch_size=batch_size, eval_every=eval_every, save_every=save_every,
                          log_every=log_every, val_crops=val_segments, seed=seed,
                          max_seconds_per_track=max_seconds_per_track, max_minutes=max_minutes),
        hparams=VocoderTrainConfig(lr=lr, segment_frames=segment_frames, gan_start=gan_start, gan_loss=gan_loss.value,
                                   train_refinement=train_refinement),
        weights=VocoderLossWeights(mel=mel_weight, stft=stft_weight, magnitude=magnitude_weight,
                                   adversarial=adv_weight, feature=fm_weight, phase_ip=ip_weight,
                                   phase_gd=gd_weight, phase_iaf=iaf_weight, consistency=consistency_weight,
                                   output_phase=output_phase_weight, low_band=low_band_weight),
    )  # fmt: skip
    result = _train(run, options)
    if result is not None and not quiet:
        from ..display import stdout

        figures = ", ".join(f"{k} {v:.4f}" for k, v in result.val.items())
        stdout.print(f"step {result.step}: {figures}", markup=False)
        use = f"genreshift convert ... --vocoder {result.export}"
        stdout.print(f"vocoder saved to {result.export} (use: {use})", markup=False)


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
    paired: Annotated[
        bool, typer.Option(help="Learn from files that match by relative path (supervised L1 recipe).")
    ] = False,
    lr: Annotated[
        Optional[float], typer.Option(min=0.0, help="Adam learning rate of G and S (1e-4; paired 1e-3).")
    ] = None,
    lr_d: Annotated[float, typer.Option(min=0.0, help="Adam learning rate of D.")] = 1e-4,
    beta1: Annotated[
        Optional[float], typer.Option(min=0.0, max=0.999, help="Adam beta1 of every net (0.5; paired 0.9).")
    ] = None,
    clip_grad: Annotated[
        Optional[float], typer.Option(min=0.0, help="Clip G's gradient norm to this, 0 = off (0).")
    ] = None,
    adv_weight: OptWeight("hinge adversarial loss", "1; paired 0") = None,
    travel_weight: OptWeight("TraVeL loss (keeps content)", "10; paired 0") = None,
    siamese_weight: OptWeight("siamese margin loss", "10; paired 0") = None,
    identity_weight: OptWeight("|G(target) - target|", "0") = None,
    content_weight: OptWeight("content loss (harmonics stay in place)", "50; paired 0") = None,
    paired_weight: OptWeight("--paired L1 term", "1") = None,
    margin: Annotated[float, typer.Option(min=0.0, help="Siamese margin (delta).")] = 2.0,
    parts: Annotated[int, typer.Option(min=1, help="Parts each crop is split into for G.")] = 3,
    colour: Annotated[
        Optional[bool], typer.Option(help="G starts with a per-bin affine colour map fitted to the data (new: on).")
    ] = None,
    gain_points: Annotated[
        Optional[int], typer.Option(min=0, help="G changes a smooth gain with this many points (new: 16; paired 0).")
    ] = None,
    residual_limit: Annotated[
        Optional[float], typer.Option(min=0.0, help="Bound of G's per-bin residual, 0 = none (new: 0.25; paired 0).")
    ] = None,
    channels: Annotated[Optional[int], typer.Option(min=1, help="G width (default 128).")] = None,
    blocks: Annotated[Optional[int], typer.Option(min=1, help="G residual blocks (default 6).")] = None,
    kernel_size: Annotated[Optional[int], typer.Option(min=1, help="G kernel size (default 5).")] = None,
    window_frames: Annotated[Optional[int], typer.Option(min=8, help="Crop length, mel frames (default 128).")] = None,
    disc_channels: Annotated[Optional[int], typer.Option(min=1, help="D width (default 128).")] = None,
    siamese_channels: Annotated[Optional[int], typer.Option(min=1, help="S width (default 128).")] = None,
    siamese_dim: Annotated[Optional[int], typer.Option(min=1, help="S embedding size (default 128).")] = None,
    val_crops: Annotated[int, typer.Option(min=1, help="Held-out crops per folder.")] = 8,
    max_seconds_per_track: MaxSeconds = None,
    max_minutes: MaxMinutes = None,
    cache_dir: CacheDir = None,
    seed: Annotated[int, typer.Option(help="Seed of weights and crops.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Train a new genre from a source folder to a target folder (TraVeLGAN, as in MelGAN-VC)."""
    from dataclasses import replace

    from .config import TrainConfig, finetune_recipe
    from .finetune import FinetuneOptions, run

    hparams, weights = finetune_recipe(paired)
    hparams = replace(hparams, lr=hparams.lr if lr is None else lr, lr_d=lr_d, parts=parts)
    if beta1 is not None:
        hparams = replace(hparams, beta1=beta1)
    if clip_grad is not None:
        hparams = replace(hparams, clip_grad=clip_grad)
    given = dict(adversarial=adv_weight, travel=travel_weight, siamese=siamese_weight, identity=identity_weight,
                 content=content_weight, paired=paired_weight)  # fmt: skip
    weights = replace(weights, margin=margin, **{k: v for k, v in given.items() if v is not None})
    sizes = dict(channels=channels, n_blocks=blocks, kernel_size=kernel_size, window_frames=window_frames)
    sizes.update(colour=colour, gain_points=gain_points, residual_limit=residual_limit)
    sizes.update(disc_channels=disc_channels, siamese_channels=siamese_channels, siamese_dim=siamese_dim)
    options = FinetuneOptions(
        source=source, target=target, name=name, init=init, out=out, run_dir=run_dir, paired=paired, device=device,
        resume=resume, force=force, quiet=quiet, cache_dir=cache_dir, overrides=sizes,
        train=TrainConfig(steps=steps, batch_size=batch_size, eval_every=eval_every, save_every=save_every,
                          log_every=log_every, val_crops=val_crops, seed=seed,
                          max_seconds_per_track=max_seconds_per_track, max_minutes=max_minutes),
        hparams=hparams,
        weights=weights,
    )  # fmt: skip
    result = _train(run, options)
    if result is not None:
        _report_finetune(result, name, quiet)


def _report_finetune(result, name: str, quiet: bool) -> None:
    """The last figures, which step the model file holds, where it is; and, last, a warning
    when the held-out figure ended worse than it started (shown even with --quiet)."""
    from ..display import stdout, warning

    if not quiet:
        stdout.print(f"step {result.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.val.items()), markup=False)
        if result.kept_step is not None:
            start = f"{result.start:.4f}" if result.start is not None else "n/a"
            stdout.print(f"kept step {result.kept_step}, the lowest held-out val_paired: {result.kept:.4f} "
                         f"(before training: {start})", markup=False)  # fmt: skip
        use = f"--to {name}" if result.in_user_models else f"--model {result.model}"
        stdout.print(f"model saved to {result.model} (use: genreshift convert ... {use})", markup=False)
    if result.ended_worse:
        warning(f"held-out val_paired ended worse than before training ({result.val['val_paired']:.4f} > "
                f"{result.start:.4f}): training moved away from the target pairs; the model saved is step "
                f"{result.kept_step}'s ({result.kept:.4f})")  # fmt: skip
