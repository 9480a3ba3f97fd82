"""Waveform -> log-mel spectrogram: the one front-end every model shares."""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
import torchaudio

from .config import MelConfig


@lru_cache(maxsize=8)
@torch.inference_mode(False)  # cached: must stay usable by training code (autograd) too
def _filterbank(cfg: MelConfig) -> torch.Tensor:
    """(n_freqs, n_mels) Slaney filters, the same as librosa's default (and MelGAN's)."""
    return torchaudio.functional.melscale_fbanks(
        n_freqs=cfg.n_fft // 2 + 1,
        f_min=cfg.f_min,
        f_max=cfg.nyquist_f_max,
        n_mels=cfg.n_mels,
        sample_rate=cfg.sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )


def filterbank(cfg: MelConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    return _filterbank(cfg).to(device)


@lru_cache(maxsize=8)
@torch.inference_mode(False)
def _window(win_length: int) -> torch.Tensor:
    return torch.hann_window(win_length)


def log_mel(audio: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """(..., L) float waveform at ``cfg.sample_rate`` -> (..., n_mels, L // hop) log10 mel.

    ``L`` must be at least ``n_fft``; callers pad shorter clips (see ``pad_for_mel``).
    """
    shape = audio.shape
    x = audio.reshape(-1, 1, shape[-1]).float()
    pad = edge_pad(cfg)
    x = F.pad(x, (pad, pad), mode="reflect").squeeze(1)
    return log_mel_padded(x, cfg).reshape(*shape[:-1], cfg.n_mels, -1)


def edge_pad(cfg: MelConfig) -> int:
    """Samples of reflect padding at each end of a signal: frame i then covers samples
    hop*i - edge_pad to hop*i - edge_pad + n_fft of the unpadded signal."""
    return (cfg.n_fft - cfg.hop_length) // 2


def log_mel_padded(x: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """(..., L) signal that already carries its edge padding (or real neighbouring audio,
    when it is a slice of a longer track) -> (..., n_mels, (L - n_fft) // hop + 1)."""
    shape = x.shape
    x = x.reshape(-1, shape[-1]).float()
    spec = torch.stft(
        x,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=_window(cfg.win_length).to(x.device),
        center=False,
        return_complex=True,
    ).abs()
    mel = torch.matmul(spec.transpose(-1, -2), filterbank(cfg, x.device)).transpose(-1, -2)
    out = torch.log10(torch.clamp(mel, min=cfg.log_floor))
    return out.reshape(*shape[:-1], cfg.n_mels, out.shape[-1])


def pad_for_mel(audio: torch.Tensor, cfg: MelConfig) -> tuple[torch.Tensor, int]:
    """Zero-pad (..., L) to a whole number of hops, at least ``n_fft`` long.

    Returns the padded audio and the original length, so the caller can trim the output
    of the vocoder back to it.
    """
    length = audio.shape[-1]
    target = max(cfg.n_fft, -(-length // cfg.hop_length) * cfg.hop_length)
    return F.pad(audio, (0, target - length)), length
