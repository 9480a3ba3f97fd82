"""The waveform discriminators of ``genreshift train-vocoder`` and their GAN losses.

HiFi-GAN's multi-period discriminator (MPD) and MelGAN's multi-scale discriminator (MSD),
scaled by one base width so that CPU runs and tests can use small ones. Each discriminator
returns its scores and the activations of every layer (for feature matching).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _wn(module: nn.Module) -> nn.Module:
    return nn.utils.parametrizations.weight_norm(module)


class ScaleDiscriminator(nn.Module):
    """A MelGAN / HiFi-GAN scale discriminator (grouped strided 1-D convs), base width ``c``."""

    def __init__(self, c: int):
        super().__init__()
        spec = [(1, c, 15, 1, 1), (c, c, 41, 2, 4), (c, 2 * c, 41, 2, 4), (2 * c, 4 * c, 41, 4, 4),
                (4 * c, 4 * c, 41, 4, 4), (4 * c, 4 * c, 5, 1, 1)]  # (in, out, kernel, stride, groups)  # fmt: skip
        self.convs = nn.ModuleList(_wn(nn.Conv1d(i, o, k, s, padding=k // 2, groups=gr)) for i, o, k, s, gr in spec)
        self.post = _wn(nn.Conv1d(4 * c, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return _conv_stack(self.convs, self.post, x)


def _conv_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run the layers, keeping every activation for feature matching; scores flattened."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        feats.append(x)
    x = post(x)
    return x.flatten(1), feats + [x]


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN's period discriminator: the waveform folded into (T / p, p), 2-D convs over time."""

    def __init__(self, period: int, c: int):
        super().__init__()
        self.period = period
        spec = [(1, c, 3), (c, 2 * c, 3), (2 * c, 4 * c, 3), (4 * c, 8 * c, 3), (8 * c, 8 * c, 1)]
        self.convs = nn.ModuleList(_wn(nn.Conv2d(i, o, (5, 1), (s, 1), padding=(2, 0))) for i, o, s in spec)
        self.post = _wn(nn.Conv2d(8 * c, 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, _, t = x.shape
        x = F.pad(x, (0, (-t) % self.period), mode="reflect")
        x = x.view(b, 1, -1, self.period)
        return _conv_stack(self.convs, self.post, x)


class Discriminators(nn.Module):
    """(B, T) waveforms -> one (scores, features) pair per discriminator."""

    def __init__(self, kinds: str, c: int):
        super().__init__()
        periods = (2, 3, 5, 7, 11) if "mpd" in kinds else ()
        self.periods = nn.ModuleList(PeriodDiscriminator(p, c) for p in periods)
        self.scales = nn.ModuleList(ScaleDiscriminator(c) for _ in range(3 if "msd" in kinds else 0))
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, wave: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        x = wave.unsqueeze(1)
        outs = [d(x) for d in self.periods]
        for i, d in enumerate(self.scales):
            x = self.pool(x) if i else x
            outs.append(d(x))
        return outs


def d_loss(real, fake, kind: str) -> torch.Tensor:
    """Summed over discriminators, as in HiFi-GAN."""
    if kind == "hinge":
        return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for (r, _), (f, _) in zip(real, fake))
    return sum((1 - r).pow(2).mean() + f.pow(2).mean() for (r, _), (f, _) in zip(real, fake))


def g_loss(fake, kind: str) -> torch.Tensor:
    return sum((-f).mean() if kind == "hinge" else (1 - f).pow(2).mean() for f, _ in fake)


def feature_loss(real, fake) -> torch.Tensor:
    """L1 between D's activations on real and generated audio (real ones held fixed)."""
    return sum(F.l1_loss(b, a.detach()) for (_, ra), (_, fa) in zip(real, fake) for a, b in zip(ra, fa))


def halves(outs):
    """Outputs of D on cat([real, fake]) -> (real outputs, fake outputs)."""

    def half(i: int):
        return [(s.chunk(2)[i], [f.chunk(2)[i] for f in feats]) for s, feats in outs]

    return half(0), half(1)
