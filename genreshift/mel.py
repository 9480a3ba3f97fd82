"""Waveform -> log-mel spectrogram: the one front-end every model shares."""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import torch
import torch.nn.functional as F

from .config import MelConfig

# The Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
_SLANEY_HZ_PER_MEL, _SLANEY_LOG_HZ = 200.0 / 3, 1000.0
_SLANEY_LOG_MEL, _SLANEY_LOG_STEP = _SLANEY_LOG_HZ / _SLANEY_HZ_PER_MEL, math.log(6.4) / 27.0


@lru_cache(maxsize=8)
@torch.inference_mode(False)  # cached: must stay usable by training code (autograd) too
def _filterbank(cfg: MelConfig) -> torch.Tensor:
    """(n_freqs, n_mels) Slaney filters, the same as librosa's default (and MelGAN's).

    torchaudio.functional.melscale_fbanks(norm="slaney", mel_scale="slaney") operation for
    operation, so bit for bit the same (tests/test_mel.py): importing torchaudio costs more
    than a short conversion, and nothing else on the way from a file to the models needs it."""
    n_freqs, n_mels = cfg.n_fft // 2 + 1, cfg.n_mels
    all_freqs = torch.linspace(0, cfg.sample_rate // 2, n_freqs)
    m_pts = torch.linspace(_hz_to_slaney(cfg.f_min), _hz_to_slaney(cfg.nyquist_f_max), n_mels + 2)
    f_pts = _slaney_to_hz(m_pts)
    # overlapping triangles between neighbouring points, from the slopes in Hz (librosa's way)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up_slopes = slopes[:, 2:] / f_diff[1:]
    fb = torch.max(torch.zeros(1), torch.min(down_slopes, up_slopes))
    fb *= (2.0 / (f_pts[2 : n_mels + 2] - f_pts[:n_mels])).unsqueeze(0)  # Slaney: about constant energy per band
    if (fb.max(dim=0).values == 0.0).any():
        warnings.warn(
            "At least one mel filterbank has all zero values. "
            f"The value for `n_mels` ({n_mels}) may be set too high. "
            f"Or, the value for `n_freqs` ({n_freqs}) may be set too low."
        )
    return fb


def _hz_to_slaney(freq: float) -> float:
    if freq >= _SLANEY_LOG_HZ:
        return _SLANEY_LOG_MEL + math.log(freq / _SLANEY_LOG_HZ) / _SLANEY_LOG_STEP
    return (freq - 0.0) / _SLANEY_HZ_PER_MEL


def _slaney_to_hz(mels: torch.Tensor) -> torch.Tensor:
    freqs = 0.0 + _SLANEY_HZ_PER_MEL * mels
    log_t = mels >= _SLANEY_LOG_MEL
    freqs[log_t] = _SLANEY_LOG_HZ * torch.exp(_SLANEY_LOG_STEP * (mels[log_t] - _SLANEY_LOG_MEL))
    return freqs


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
