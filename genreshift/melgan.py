"""MelGAN: the generator (layer for layer melgan-neurips' ``Generator``), and its files.

melgan-neurips saves ``netG.state_dict()`` with no settings beside it, so the sizes are read
back from the weights' shapes: the first convolution gives n_mels and the width, the last one
ngf, each transposed convolution (kernel 2 r, stride r) one upsampling ratio r, and the
residual blocks per stage n_residual_layers. Its ``Audio2Mel`` is genreshift's mel front-end
(``MelConfig()``), so the file is taken to be trained on those features.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import torch
from torch import nn

from .config import WINDOW_FRAMES, MelConfig, MelGANConfig


def _weight_norm(module: nn.Module) -> nn.Module:
    # The legacy weight_norm gives "weight_g"/"weight_v" keys, the keys of melgan-neurips
    # checkpoints; the parametrize version would rename them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return nn.utils.weight_norm(module)


def _wn_conv(*args, **kwargs) -> nn.Module:
    return _weight_norm(nn.Conv1d(*args, **kwargs))


class MelGANResBlock(nn.Module):
    def __init__(self, dim: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.ReflectionPad1d(dilation),
            _wn_conv(dim, dim, kernel_size=3, dilation=dilation),
            nn.LeakyReLU(0.2),
            _wn_conv(dim, dim, kernel_size=1),
        )
        self.shortcut = _wn_conv(dim, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class MelGAN(nn.Module):
    """MelGAN generator: (B, n_mels, T) -> (B, T * prod(ratios)).

    Layer for layer the ``Generator`` of melgan-neurips, so its ``model.*`` state_dict
    keys load unchanged. ``mel`` is not used: the layers need only ``cfg.n_mels``.
    """

    arch, config_class, has_weights = "melgan", MelGANConfig, True
    context_frames, window_frames, carries_phase = 32, WINDOW_FRAMES, False
    # MelGAN works at the sample rate, and a batch of its activations (~200 MB per window)
    # outgrows the CPU caches. ms per window at 1 / 2 / 4 / 16 windows per call, measured
    # on a 2-core CPU: 330 / 280 / 860 / 950.
    cpu_batch = 1

    def __init__(self, cfg: MelGANConfig, mel: MelConfig | None = None):
        super().__init__()
        self.cfg = cfg
        mult = 2 ** len(cfg.ratios)
        layers: list[nn.Module] = [
            nn.ReflectionPad1d(3),
            _wn_conv(cfg.n_mels, mult * cfg.ngf, kernel_size=7, padding=0),
        ]
        for r in cfg.ratios:
            layers += [
                nn.LeakyReLU(0.2),
                _weight_norm(
                    nn.ConvTranspose1d(
                        mult * cfg.ngf,
                        mult * cfg.ngf // 2,
                        kernel_size=r * 2,
                        stride=r,
                        padding=r // 2 + r % 2,
                        output_padding=r % 2,
                    )
                ),
            ]
            layers += [MelGANResBlock(mult * cfg.ngf // 2, 3**j) for j in range(cfg.n_residual_layers)]
            mult //= 2
        layers += [
            nn.LeakyReLU(0.2),
            nn.ReflectionPad1d(3),
            _wn_conv(cfg.ngf, 1, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.model(mel).squeeze(1)


_DIRECT = re.compile(r"model\.(\d+)\.weight_v$")  # the convolutions outside residual blocks
_RESIDUAL = re.compile(r"model\.(\d+)\.block\.2\.weight_v$")  # one per residual block


def looks_like_neurips(data: Any) -> bool:
    """A dict of tensors whose keys all start with ``model.``: melgan-neurips' layout."""
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(k, str) and k.startswith("model.") for k in data)
        and all(isinstance(v, torch.Tensor) for v in data.values())
    )


def config_of(state: dict[str, torch.Tensor]) -> MelGANConfig:
    """The MelGANConfig whose generator has these weights; ValueError says what is off."""
    direct = sorted((int(m.group(1)), state[k].shape) for k in state if (m := _DIRECT.match(k)))
    if len(direct) < 3:
        raise ValueError("it has too few convolutions for a MelGAN generator")
    (_, first), *upsampling, (_, last) = direct
    if len(first) != 3 or len(last) != 3 or last[0] != 1:
        raise ValueError("its first or last convolution is not a MelGAN one")
    ratios = tuple(shape[2] // 2 for _, shape in upsampling)
    blocks = sum(1 for k in state if _RESIDUAL.match(k))
    if not ratios or blocks % len(ratios):
        raise ValueError(f"{blocks} residual blocks do not split evenly over {len(ratios)} upsampling stages")
    return MelGANConfig(n_mels=first[1], ngf=last[1], ratios=ratios, n_residual_layers=blocks // len(ratios))


def check_matches(cfg: MelGANConfig, state: dict[str, torch.Tensor], mel: MelConfig) -> None:
    """ValueError unless ``state`` loads into MelGAN(cfg) and it makes ``mel``'s hop per frame."""
    if math.prod(cfg.ratios) != mel.hop_length or cfg.n_mels != mel.n_mels:
        raise ValueError(
            f"it makes {math.prod(cfg.ratios)} samples from {cfg.n_mels} mel bands per frame; "
            f"genreshift's mel has {mel.hop_length} samples and {mel.n_mels} bands"
        )
    expected = {k: v.shape for k, v in MelGAN(cfg).state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"its keys differ from a MelGAN generator's ({(missing + unexpected)[0]} ...)")
    wrong = next((k for k, shape in expected.items() if state[k].shape != shape), None)
    if wrong:
        raise ValueError(f"{wrong} has shape {tuple(state[wrong].shape)}, not {tuple(expected[wrong])}")
