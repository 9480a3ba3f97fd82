"""The TraVeLGAN networks that move log-mel windows from one genre toward another.

As in MelGAN-VC, a generator G rewrites a window, a discriminator D judges whether a window
looks like the target genre, and a siamese network S embeds windows so that the
*transformation vectors* S(a) - S(b) between two samples survive translation, which keeps
the content while D changes the style. Only G is needed at conversion time.

Unlike MelGAN-VC's 2-D convolutions, these nets treat mel bins as channels and convolve
over time only: they are several times cheaper per frame, which matters on a laptop CPU.
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


class Generator(nn.Module):
    """G: (B, n_mels, T) log-mel -> (B, n_mels, T) log-mel of the target genre.

    The output is the input plus a learned residual, so a fresh G starts near identity
    and every length T works (convolutions only, "same" padding).
    """

    def __init__(self, cfg: TranslatorConfig):
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Conv1d(cfg.n_mels, cfg.channels, cfg.kernel_size, padding=cfg.kernel_size // 2)
        self.blocks = nn.Sequential(
            *[ResBlock(cfg.channels, cfg.kernel_size, 2 ** (i % 4)) for i in range(cfg.n_blocks)]
        )
        self.out = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv1d(cfg.channels, cfg.n_mels, 1))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = (mel - MEL_CENTER) / MEL_SCALE
        return mel + MEL_SCALE * self.out(self.blocks(self.inp(x)))


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
