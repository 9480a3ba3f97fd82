"""Losses that teach the fast vocoder's net the phase, so it needs no Griffin-Lim at inference.

The three phase losses are APNet's (Ai & Ling, 2023; kept in APNet2): the predicted phase
against the phase of the input's STFT on the vocoder's own frames, compared directly
(instantaneous phase), as differences between neighbouring bins (group delay) and between
neighbouring frames (instantaneous angular frequency). Every difference goes through the
anti-wrapping function, because phases 2 pi apart are the same phase. The consistency loss
asks that the predicted spectrum survive its own iSTFT and STFT unchanged: a spectrum that no
signal has is what Griffin-Lim would otherwise have to repair.
"""

from __future__ import annotations

import math

import torch

TWO_PI = 2 * math.pi
# Frames at each end of a segment left out of the consistency loss: their overlap-add misses
# the neighbours beyond the segment, so even a true spectrum does not come back unchanged.
CONSISTENCY_EDGE = 4


def anti_wrap(x: torch.Tensor) -> torch.Tensor:
    """|x - 2 pi round(x / 2 pi)|: the distance of an angle from 0 modulo 2 pi, in [0, pi]."""
    return (x - TWO_PI * torch.round(x / TWO_PI)).abs()


def instantaneous_phase_loss(phase: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean anti-wrapped phase error, (B, F, T) each."""
    return anti_wrap(phase - target).mean()


def group_delay_loss(phase: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean anti-wrapped error of the phase difference between neighbouring bins (dim 1)."""
    return anti_wrap(torch.diff(phase, dim=1) - torch.diff(target, dim=1)).mean()


def angular_frequency_loss(phase: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean anti-wrapped error of the phase difference between neighbouring frames (dim 2)."""
    return anti_wrap(torch.diff(phase, dim=2) - torch.diff(target, dim=2)).mean()


def phase_losses(phase: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three APNet phase losses, by their log names ``ip``, ``gd`` and ``iaf``."""
    return {
        "ip": instantaneous_phase_loss(phase, target),
        "gd": group_delay_loss(phase, target),
        "iaf": angular_frequency_loss(phase, target),
    }


def consistency_loss(spec: torch.Tensor, rebuilt: torch.Tensor, edge: int = CONSISTENCY_EDGE) -> torch.Tensor:
    """APNet's STFT consistency loss: mean squared error of real and imaginary parts between a
    predicted spectrum and the STFT of its own iSTFT, (B, F, T) complex each, the ``edge``
    frames at both ends left out."""
    inner = slice(edge, spec.shape[-1] - edge) if spec.shape[-1] > 2 * edge else slice(None)
    diff = torch.view_as_real(rebuilt[..., inner] - spec[..., inner])
    return diff.pow(2).sum(-1).mean()


def weighted_mean(error: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (error * weight).sum() / weight.sum().clamp(min=1e-8)


def advance_loss(advance: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Integrated phase (v3): the predicted turn of each bin's phase from the frame before
    against the input's (its instantaneous angular frequency), anti-wrapped, weighted by the
    input's magnitude: a silent bin's phase is noise and teaches nothing. (B, F, T) each."""
    return weighted_mean(anti_wrap(advance[..., 1:] - torch.diff(target, dim=2)), weight[..., 1:])


def offset_loss(offset: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Integrated phase (v3): the phase difference between neighbouring bins of the predicted
    offsets against the input's (its group delay), anti-wrapped, weighted by the geometric
    mean of the two bins' magnitudes. (B, F, T) each."""
    return weighted_mean(anti_wrap(torch.diff(offset, dim=1) - torch.diff(target, dim=1)), _pair_weight(weight, 1))


def _pair_weight(m: torch.Tensor, dim: int) -> torch.Tensor:
    """The geometric mean of the magnitudes of neighbours along ``dim``: the weight of a
    difference between them, which is as reliable as the quieter of the two."""
    n = m.shape[dim] - 1
    return (m.narrow(dim, 1, n) * m.narrow(dim, 0, n)).sqrt()


def _turns(u: torch.Tensor, dim: int) -> torch.Tensor:
    """How unit phasors ``u`` turn from one element to the next along ``dim``."""
    n = u.shape[dim] - 1
    return u.narrow(dim, 1, n) * u.narrow(dim, 0, n).conj()


def _turn_error(u: torch.Tensor, v: torch.Tensor, dim: int) -> torch.Tensor:
    """1 - cos of the difference between how ``u`` and ``v`` (unit phasors) turn along
    ``dim``: 0 where they turn alike, 2 where opposite."""
    return 1.0 - (_turns(u, dim) * _turns(v, dim).conj()).real


def output_phase_losses(spec: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Integrated phase (v3): how the phase of the scan's own output turns from frame to frame
    (``iaf_out``) and from bin to bin (``gd_out``) against the input's, (B, F, T) complex each.

    ``advance_loss`` and ``offset_loss`` judge the net's two heads apart, and the heads learn
    to make up for each other (docs/training.md). These judge what the recurrence makes of
    them: a partial whose bins are given different advances drifts apart across frequency,
    which only ``gd_out`` sees. Each term is 1 - cos of the angle error (smooth, with no
    wrap, and no undefined gradient where a phasor is zero), weighted by the geometric mean
    of the input's magnitudes of the two elements compared."""
    u, v, m = torch.sgn(spec), torch.sgn(target), target.abs()
    return {
        "iaf_out": weighted_mean(_turn_error(u, v, 2), _pair_weight(m, 2)),
        "gd_out": weighted_mean(_turn_error(u, v, 1), _pair_weight(m, 1)),
    }
