"""Griffin-Lim from the mel: no weights, the baseline every trained vocoder is judged against."""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from .config import WINDOW_FRAMES, GriffinLimConfig, MelConfig
from .mel import filterbank


class GriffinLim(nn.Module):
    """No weights: invert the mel filters (least squares), then Griffin-Lim, momentum 0.99."""

    arch, config_class, has_weights = "griffinlim", GriffinLimConfig, False
    context_frames, window_frames, carries_phase = 8, WINDOW_FRAMES, False
    # At the sample rate too: ms per window at 1 / 2 / 4 / 16 windows per call on a 2-core
    # CPU: 65 / 65 / 100 / 95.
    cpu_batch = 2

    def __init__(self, cfg: GriffinLimConfig | None = None, mel: MelConfig | None = None):
        super().__init__()
        if isinstance(cfg, MelConfig):  # the old GriffinLim(mel_cfg) call
            raise TypeError("GriffinLim(cfg, mel): pass the mel settings as mel=")
        cfg, mel_cfg = cfg or GriffinLimConfig(), mel or MelConfig()
        self.cfg, self.mel_cfg = cfg, mel_cfg
        self.inverse_mel = torchaudio.transforms.InverseMelScale(
            n_stft=mel_cfg.n_fft // 2 + 1,
            n_mels=mel_cfg.n_mels,
            sample_rate=mel_cfg.sample_rate,
            f_min=mel_cfg.f_min,
            f_max=mel_cfg.nyquist_f_max,
            norm="slaney",
            mel_scale="slaney",
        )
        self.griffin_lim = torchaudio.transforms.GriffinLim(
            n_fft=mel_cfg.n_fft,
            n_iter=cfg.n_iter,
            win_length=mel_cfg.win_length,
            hop_length=mel_cfg.hop_length,
            power=1.0,
            momentum=0.99,
        )
        # Keep the filterbank identical to the front-end's, whatever torchaudio defaults to.
        self.inverse_mel.fb = filterbank(mel_cfg)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        hop = self.mel_cfg.hop_length
        magnitude = self.inverse_mel((10.0 ** mel.float()).clamp(min=0))
        audio = self.griffin_lim(magnitude)  # frame i centred on hop * i
        audio = torch.nn.functional.pad(audio, (hop // 2, 0))  # ... move it to hop * i + hop / 2
        frames = mel.shape[-1]
        return torch.nn.functional.pad(audio, (0, max(0, frames * hop - audio.shape[-1])))[..., : frames * hop]
