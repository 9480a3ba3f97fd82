"""Generator files of melgan-neurips (a bare ``state_dict`` of its ``Generator``) as vocoders.

melgan-neurips saves ``netG.state_dict()`` with no settings beside it, so the sizes are read
back from the weights' shapes: the first convolution gives n_mels and the width, the last one
ngf, each transposed convolution (kernel 2 r, stride r) one upsampling ratio r, and the
residual blocks per stage n_residual_layers. Its ``Audio2Mel`` is genreshift's mel front-end
(``MelConfig()``), so the file is taken to be trained on those features.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from .config import MelConfig, MelGANConfig

_DIRECT = re.compile(r"model\.(\d+)\.weight_v$")  # the convolutions outside residual blocks
_RESIDUAL = re.compile(r"model\.(\d+)\.block\.2\.weight_v$")  # one per residual block


def looks_like(data: Any) -> bool:
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
    from .vocoder import MelGAN

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
