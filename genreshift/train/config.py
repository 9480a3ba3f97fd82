"""Settings of the training commands only: run length and data, optimisers, loss weights.

Inference never needs these (a checkpoint rebuilds its model from ``genreshift.config``);
a training checkpoint stores them as plain dicts in its "training" entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import TranslatorConfig


@dataclass(frozen=True)
class TrainConfig:
    """What every training run shares: length, batches, evaluation, checkpoints, data."""

    steps: int = 20000
    batch_size: int = 16
    eval_every: int = 500
    save_every: int = 500
    log_every: int = 50  # plain log lines when stderr is not a terminal, and log.jsonl
    val_crops: int = 8  # held-out crops per domain
    seed: int = 0
    silence_db: float = -60.0  # frames quieter than this (RMS, dBFS) count as silent
    max_seconds_per_track: float | None = None  # bounds decoding and mel caching time
    max_minutes: float | None = None  # stop after this much wall time in this session (or at steps)


@dataclass(frozen=True)
class CriticConfig:
    """Sizes of the training-only TraVeLGAN networks (discriminator D and siamese S)."""

    disc_channels: int = 128
    siamese_channels: int = 128
    siamese_dim: int = 128


@dataclass(frozen=True)
class FinetuneConfig:
    """Optimiser settings of ``genreshift finetune`` (the MelGAN-VC ones by default)."""

    lr: float = 1e-4  # G and S
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    clip_grad: float = 0.0  # > 0: G and S's gradient norm is clipped to this before each step
    parts: int = 3  # G sees each crop as this many parts, concatenated for D (MelGAN-VC)


@dataclass(frozen=True)
class TravelLossWeights:
    """Generator loss = sum of weight * term; defaults follow MelGAN-VC."""

    adversarial: float = 1.0  # hinge: -D(G(a))
    travel: float = 10.0  # cosine + squared L2 between S-difference vectors before/after G
    siamese: float = 10.0  # max(0, margin - ||S(a_i) - S(a_j)||)^2, keeps S from collapsing
    identity: float = 0.5  # |G(b) - b| on target crops
    paired: float = 1.0  # |G(a) - b| on matched pairs (only with --paired)
    margin: float = 2.0  # delta of the siamese margin loss
    content: float = 0.0  # |fine structure of G(a) - that of a|: holds the harmonics in place


def finetune_recipe(paired: bool) -> tuple[FinetuneConfig, TravelLossWeights]:
    """Default optimiser settings and loss weights of ``genreshift finetune``.

    With pairs, what a pair teaches is a plain supervised L1: every adversarial and
    content-keeping term is off and the learning rate is 10x higher, which measured far
    better than the GAN recipe plus an L1 term (docs/training.md). Its Adam beta1 is the
    usual 0.9, not the GAN's 0.5: with 0.5 a gradient spike moves the weights by up to 16
    learning rates in one step, and real-music runs blew up (issue 21, docs/training.md).
    Without pairs: the MelGAN-VC recipe plus the content term.
    """
    if paired:
        weights = TravelLossWeights(adversarial=0.0, travel=0.0, siamese=0.0, identity=0.0, paired=1.0, content=0.0)
        return FinetuneConfig(lr=1e-3, beta1=0.9), weights
    # No identity term: a new G starts from a colour map fitted to move the source's mean level
    # to the target's, and |G(b) - b| on target crops would pull that map back to the identity.
    return FinetuneConfig(), TravelLossWeights(identity=0.0, content=UNPAIRED_CONTENT_WEIGHT)


# Chosen by measurement: docs/training.md, "translator v3".
UNPAIRED_CONTENT_WEIGHT = 50.0


def new_translator(paired: bool) -> TranslatorConfig:
    """The generator a run from scratch builds (v3). ``TranslatorConfig()`` itself keeps the
    v1 layout, so that old checkpoints, whose files predate the v3 fields, rebuild unchanged."""
    if paired:
        return TranslatorConfig(colour=True)
    return TranslatorConfig(colour=True, gain_points=16, residual_limit=0.25)


@dataclass(frozen=True)
class VocoderTrainConfig:
    """Optimiser and discriminator settings of ``genreshift train-vocoder``."""

    lr: float = 2e-4
    beta1: float = 0.8
    beta2: float = 0.99
    segment_frames: int = 32  # mel frames per training segment (x hop samples)
    gan_start: int = 1000  # steps of reconstruction-only warm-up before D and feature matching
    disc: str = "msd+mpd"  # msd | mpd | msd+mpd
    disc_channels: int = 16  # base width of every discriminator
    gan_loss: str = "lsgan"  # lsgan | hinge
    # fast vocoder: run the model's Griffin-Lim refinement (its refine/mel iterations) in
    # training too, so the losses judge what inference puts out and the net learns spectra
    # that the refinement finishes well (docs/training.md, "Vocoder v3")
    train_refinement: bool = False


@dataclass(frozen=True)
class VocoderLossWeights:
    """Generator loss = sum of weight * term; mel and feature weights as in HiFi-GAN."""

    mel: float = 45.0  # L1 between log-mels of output and input
    stft: float = 1.0  # multi-resolution STFT: spectral convergence + log-magnitude L1
    magnitude: float = 10.0  # fast vocoder: its predicted magnitude against the input's STFT
    adversarial: float = 1.0
    feature: float = 2.0  # feature matching (L1 between D activations of real and generated)
    # fast vocoder, phase (v3): APNet's anti-wrapped instantaneous phase, group delay and
    # instantaneous angular frequency losses, and the STFT consistency of the predicted spectrum.
    # Off by default, so the v1/v2 recipes train as they did.
    phase_ip: float = 0.0
    phase_gd: float = 0.0
    phase_iaf: float = 0.0
    consistency: float = 0.0
    # integrated phase: how the scan's output phase turns across frames and bins, against the
    # input's (phase_losses.output_phase_losses); each of its two terms gets this weight
    output_phase: float = 0.0
    # fast vocoder: log-magnitude L1 of the multi-resolution STFT below LOW_BAND_HZ only. Above
    # 4 kHz no vocoder can know the noise's realisation from the mel, and those bands dominate
    # the full-band term; below it the tonal partials' phase is what Griffin-Lim finishes.
    low_band: float = 0.0
