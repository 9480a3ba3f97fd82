"""The TraVeLGAN networks that move log-mel windows from one genre toward another.

As in MelGAN-VC, a generator G rewrites a window, a discriminator D judges whether a window
looks like the target genre, and a siamese network S embeds windows so that the
*transformation vectors* S(a) - S(b) between two samples survive translation, which keeps
the content while D changes the style. Only G is needed at conversion time.

Unlike MelGAN-VC's 2-D convolutions, these nets treat mel bins as channels and convolve
over time only: they are several times cheaper per frame, which matters on a laptop CPU.
Because such a net mixes every bin with every other, the v3 generator can restrict what it
changes (``TranslatorConfig.colour``, ``gain_points``, ``residual_limit``): a per-bin affine
"colour" map takes the global timbre at once, a gain that is smooth across bins can reshape
the spectral envelope but cannot move a harmonic, and only a bounded residual may.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TranslatorConfig

# Log-mel values live in about [-5, 1.5]; centring them keeps activations near zero.
MEL_CENTER = -2.0
MEL_SCALE = 2.0


class ResBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.net = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.Conv1d(channels, channels, kernel_size, padding=pad, dilation=dilation),
            nn.LeakyReLU(0.2),
            nn.Conv1d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class Colour(nn.Module):
    """A per-bin affine map of a log-mel, (B, n_mels, T) -> (B, n_mels, T): each bin is scaled
    about ``MEL_CENTER`` and offset. It starts as the identity; ``fit`` sets it in closed form."""

    def __init__(self, n_mels: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n_mels, 1))
        self.offset = nn.Parameter(torch.zeros(n_mels, 1))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return MEL_CENTER + self.scale * (mel - MEL_CENTER) + self.offset

    @torch.no_grad()
    def fit(self, scale: torch.Tensor, offset: torch.Tensor) -> None:
        """Set (n_mels,) scale and offset, e.g. from statistics of the training data."""
        self.scale.copy_(scale.reshape(-1, 1))
        self.offset.copy_(offset.reshape(-1, 1))


def interpolation(points: int, n_mels: int) -> torch.Tensor:
    """(n_mels, points) weights that spread ``points`` evenly placed control values linearly
    over the bins: a gain made of them is piecewise linear across frequency."""
    pos = torch.linspace(0, points - 1, n_mels)
    left = pos.floor().clamp(max=points - 2).long() if points > 1 else torch.zeros(n_mels, dtype=torch.long)
    frac = pos - left
    w = torch.zeros(n_mels, points)
    w[torch.arange(n_mels), left] = 1 - frac
    if points > 1:
        w[torch.arange(n_mels), left + 1] += frac
    return w


class Generator(nn.Module):
    """G: (B, n_mels, T) log-mel -> (B, n_mels, T) log-mel of the target genre.

    The output is the input (through ``Colour`` if configured) plus a learned change: a free
    residual per bin (v1), optionally bounded by ``residual_limit``, plus with ``gain_points``
    a gain that is smooth across bins. The output layers start at zero, so a fresh G is the
    identity (or its colour map), and every length T works (convolutions, "same" padding).
    """

    def __init__(self, cfg: TranslatorConfig):
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Conv1d(cfg.n_mels, cfg.channels, cfg.kernel_size, padding=cfg.kernel_size // 2)
        self.blocks = nn.Sequential(
            *[ResBlock(cfg.channels, cfg.kernel_size, 2 ** (i % 4)) for i in range(cfg.n_blocks)]
        )
        self.out = self._head(cfg.channels, cfg.n_mels)
        self.colour = Colour(cfg.n_mels) if cfg.colour else None
        self.gain = self._head(cfg.channels, cfg.gain_points) if cfg.gain_points > 0 else None
        if cfg.gain_points > 0:  # derived from the config, so not part of the weights file
            self.register_buffer("spread", interpolation(cfg.gain_points, cfg.n_mels), persistent=False)

    @staticmethod
    def _head(channels: int, outputs: int) -> nn.Sequential:
        head = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv1d(channels, outputs, 1))
        nn.init.zeros_(head[1].weight)
        nn.init.zeros_(head[1].bias)
        return head

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.inp((mel - MEL_CENTER) / MEL_SCALE))
        change = MEL_SCALE * self.out(h)
        if self.cfg.residual_limit > 0:
            limit = self.cfg.residual_limit
            change = limit * torch.tanh(change / limit)
        if self.gain is not None:
            change = change + MEL_SCALE * torch.einsum("mk,bkt->bmt", self.spread, self.gain(h))
        return (self.colour(mel) if self.colour is not None else mel) + change


class Discriminator(nn.Module):
    """D: (B, n_mels, T) -> (B, T') patch scores; higher means "more like the target"."""

    def __init__(self, cfg: TranslatorConfig, channels: int = 128):
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv1d(cfg.n_mels, c, 5, padding=2),
            nn.LeakyReLU(0.2),
            nn.Conv1d(c, c, 5, stride=2, padding=2),
            nn.LeakyReLU(0.2),
            nn.Conv1d(c, c * 2, 5, stride=2, padding=2),
            nn.LeakyReLU(0.2),
            nn.Conv1d(c * 2, c * 2, 5, stride=2, padding=2),
            nn.LeakyReLU(0.2),
            nn.Conv1d(c * 2, 1, 3, padding=1),
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net((mel - MEL_CENTER) / MEL_SCALE).squeeze(1)


class Siamese(nn.Module):
    """S: (B, n_mels, T) -> (B, dim) embedding whose differences are the TraVeL vectors."""

    def __init__(self, cfg: TranslatorConfig, channels: int = 128, dim: int = 128):
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv1d(cfg.n_mels, c, 5, stride=2, padding=2),
            nn.LeakyReLU(0.2),
            nn.Conv1d(c, c, 5, stride=2, padding=2),
            nn.LeakyReLU(0.2),
            nn.Conv1d(c, c, 5, stride=2, padding=2),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool1d(4),
            nn.Flatten(),
            nn.Linear(c * 4, dim),
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net((mel - MEL_CENTER) / MEL_SCALE)


class AtStrength(nn.Module):
    """A translator's change scaled in the mel domain: mel + s * (G(mel) - mel).

    Scaling the change rather than cross-fading audio keeps one vocoder pass and no comb
    filtering; s < 1 gives a milder style, s > 1 exaggerates it."""

    def __init__(self, translator: nn.Module, strength: float):
        super().__init__()
        self.translator = translator
        self.strength = strength

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.lerp(mel, self.translator(mel), self.strength)


def at_strength(translator: nn.Module, strength: float) -> nn.Module:
    """``translator`` at ``strength``: itself at 1, no translation at all at 0 (so S = 0 is
    exactly the vocoder-only output), else ``AtStrength``."""
    if strength == 1:
        return translator
    if strength == 0:
        return nn.Identity()
    return AtStrength(translator, strength)
