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


# Mel frames per window the pipeline cuts for a vocoder; a fast vocoder's config may ask for
# longer ones (FastVocoderConfig.window_frames), so less of each window is context.
WINDOW_FRAMES = 256


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
    window_frames: int = WINDOW_FRAMES  # the default of every vocoder
    # v3: "direct" predicts each frame's phase; "integrated" predicts how each bin's phase
    # turns and where new sound enters, and carries the phase from frame to frame (phase.py).
    phase: str = "direct"

    def __post_init__(self) -> None:
        if self.window_frames < 16:
            raise ValueError(f"window_frames must be at least 16, got {self.window_frames}")
        if self.phase not in ("direct", "integrated"):
            raise ValueError(f"phase must be 'direct' or 'integrated', got {self.phase!r}")


@dataclass(frozen=True)
class GriffinLimConfig:
    """Griffin-Lim from the inverted mel filters: no weights, so no checkpoint."""

    n_iter: int = 32
