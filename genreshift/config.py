"""Typed settings that travel inside every checkpoint.

Each dataclass is frozen and is saved as a plain dict (``asdict``) so a weights file says
how to rebuild its model, and ``from_dict`` rebuilds it while refusing unknown keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild dataclass ``cls`` from ``data``, turning lists back into tuples."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} settings: {', '.join(sorted(unknown))}")
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**clean)


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-data form of a settings dataclass (tuples become lists for weights_only loads)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(obj).items()}


@dataclass(frozen=True)
class MelConfig:
    """The one definition of the log-mel front-end, shared by every model.

    These are the MelGAN settings, so checkpoints of the original melgan-neurips code
    stay usable: magnitude (power 1) mel with Slaney filters, log10(max(mel, 1e-5)),
    reflect padding of (n_fft - hop) / 2 on both sides and no centring, which gives exactly
    ``len(audio) // hop`` frames.
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = None  # None means Nyquist
    log_floor: float = 1e-5

    @property
    def nyquist_f_max(self) -> float:
        return float(self.f_max) if self.f_max is not None else self.sample_rate / 2

    @property
    def silence_level(self) -> float:
        """Log-mel value of digital silence."""
        import math

        return math.log10(self.log_floor)


@dataclass(frozen=True)
class ChunkConfig:
    """How a long signal is cut into overlapping windows (sizes in mel frames)."""

    size: int = 128
    overlap: int = 32
    context: int = 0  # extra frames on each side that are computed and thrown away

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError("chunk size must be positive")
        if not 0 <= self.overlap < self.size:
            raise ValueError(f"overlap must be in [0, {self.size}), got {self.overlap}")
        if self.context < 0:
            raise ValueError("context must be >= 0")


@dataclass(frozen=True)
class TranslatorConfig:
    """The TraVeLGAN generator: a residual 1-D conv net over time, mel bins as channels."""

    n_mels: int = 80
    channels: int = 128
    n_blocks: int = 6
    kernel_size: int = 5
    window_frames: int = 128  # the crop length it is trained on
    # v3 additions; their defaults rebuild a v1/v2 checkpoint unchanged.
    colour: bool = False  # a per-bin affine map of the input (global timbre), before the residual
    gain_points: int = 0  # > 0: the net's output is a gain smooth across bins (this many control points)
    # plus the residual below; 0: a free residual per bin (v1)
    residual_limit: float = 0.0  # > 0: the per-bin residual is bounded to +-this (log10 units) by tanh


@dataclass(frozen=True)
class MelGANConfig:
    """The MelGAN generator of Kumar et al. (2019), key-compatible with melgan-neurips."""

    n_mels: int = 80
    ngf: int = 32
    ratios: tuple[int, ...] = (8, 8, 2, 2)
    n_residual_layers: int = 3


@dataclass(frozen=True)
class FastVocoderConfig:
    """A Vocos-style vocoder: ConvNeXt blocks at frame rate, then an iSTFT head."""

    n_mels: int = 80
    dim: int = 128
    intermediate_dim: int = 384
    n_blocks: int = 4
    kernel_size: int = 7
    n_fft: int = 1024
    hop_length: int = 256
    # v2 additions; their defaults rebuild a v1 checkpoint unchanged.
    magnitude_prior: bool = False  # predict log-magnitude as a correction of the mel spread onto STFT bins
    refine_iters: int = 0  # Griffin-Lim iterations at inference toward the predicted magnitude
    mel_iters: int = 0  # then Griffin-Lim iterations that keep the reached magnitude's fine structure
    # but match its mel to the input mel
    # v3 addition: mel frames per window when `convert` cuts a track for this vocoder. Longer
    # windows spend less on the context frames computed twice; inference only, like the above.
    window_frames: int = 256  # the default of every vocoder (vocoder.WINDOW_FRAMES)

    def __post_init__(self) -> None:
        if self.window_frames < 16:
            raise ValueError(f"window_frames must be at least 16, got {self.window_frames}")


@dataclass(frozen=True)
class GriffinLimConfig:
    """Griffin-Lim from the inverted mel filters: no weights, so no checkpoint."""

    n_iter: int = 32


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
    better than the GAN recipe plus an L1 term (docs/training.md). Without pairs: the
    MelGAN-VC recipe plus the content term.
    """
    if paired:
        weights = TravelLossWeights(adversarial=0.0, travel=0.0, siamese=0.0, identity=0.0, paired=1.0, content=0.0)
        return FinetuneConfig(lr=1e-3), weights
    # No identity term: a new G starts from a colour map fitted to move the source's mean level
    # to the target's, and |G(b) - b| on target crops would pull that map back to the identity.
    return FinetuneConfig(), TravelLossWeights(identity=0.0, content=UNPAIRED_CONTENT_WEIGHT)


# Chosen by measurement: docs/training.md, "translator v3".
UNPAIRED_CONTENT_WEIGHT = 10.0


def new_translator(paired: bool) -> TranslatorConfig:
    """The generator a run from scratch builds (v3). ``TranslatorConfig()`` itself keeps the
    v1 layout, so that old checkpoints, whose files predate the v3 fields, rebuild unchanged."""
    if paired:
        return TranslatorConfig(colour=True)
    return TranslatorConfig(colour=True, gain_points=16, residual_limit=0.5)


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
