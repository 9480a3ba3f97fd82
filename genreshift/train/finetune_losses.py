"""The terms of the translator's training loss, and the closed-form start of its colour map.

Shapes: mels are (B, n_mels, T) log10 mels; siamese embeddings are (B, dim).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def split_parts(x: torch.Tensor, parts: int) -> torch.Tensor:
    """(B, M, parts * p) -> (B * parts, M, p): each crop as consecutive parts."""
    b, m, t = x.shape
    return x.reshape(b, m, parts, t // parts).permute(0, 2, 1, 3).reshape(b * parts, m, t // parts)


def join_parts(x: torch.Tensor, parts: int) -> torch.Tensor:
    """Inverse of ``split_parts``."""
    n, m, p = x.shape
    return x.reshape(n // parts, parts, m, p).permute(0, 2, 1, 3).reshape(n // parts, m, parts * p)


def _pair_vectors(e: torch.Tensor) -> torch.Tensor:
    i, j = torch.triu_indices(len(e), len(e), 1, device=e.device)
    return e[i] - e[j]


def travel_loss(e_src: torch.Tensor, e_out: torch.Tensor) -> torch.Tensor:
    """Cosine distance + mean squared difference between the vectors of all pairs in the batch,
    before (S(a_i) - S(a_j)) and after (S(G(a_i)) - S(G(a_j))) translation."""
    va, vg = _pair_vectors(e_src), _pair_vectors(e_out)
    return (1 - F.cosine_similarity(va, vg, dim=-1)).mean() + (va - vg).pow(2).mean()


def margin_loss(e_src: torch.Tensor, margin: float) -> torch.Tensor:
    """max(0, delta - ||S(a_i) - S(a_j)||)^2: distinct crops must stay apart in S's space."""
    return F.relu(margin - _pair_vectors(e_src).norm(dim=-1)).pow(2).mean()


def fine_structure(mel: torch.Tensor, width: int = 5) -> torch.Tensor:
    """The mel minus its moving average over ``width`` neighbouring bins: the peaks and
    valleys that harmonics draw across frequency, without the spectral envelope."""
    pad = width // 2
    smooth = F.avg_pool1d(F.pad(mel.transpose(1, 2), (pad, pad), mode="replicate"), width, stride=1)
    return mel - smooth.transpose(1, 2)


def content_loss(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """L1 between the fine structures of a mel before and after translation: it lets the
    envelope (timbre, EQ) change freely and holds where the harmonics are."""
    return (fine_structure(after) - fine_structure(before)).abs().mean()


def paired_colour(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin least-squares fit ``target ~ center + scale * (source - center) + offset`` over
    aligned frames, (N, n_mels, T) each -> (n_mels,) scale and offset, with ``center`` = -2
    (the generator's ``MEL_CENTER``): the best per-bin affine equaliser for these pairs."""
    from ..translator import MEL_CENTER

    x = (source - MEL_CENTER).transpose(0, 1).reshape(source.shape[1], -1)
    y = (target - MEL_CENTER).transpose(0, 1).reshape(target.shape[1], -1)
    xm, ym = x.mean(1), y.mean(1)
    var = (x - xm[:, None]).pow(2).mean(1)
    cov = ((x - xm[:, None]) * (y - ym[:, None])).mean(1)
    scale = (cov / var.clamp(min=1e-6)).clamp(0.25, 4.0)
    return scale, ym - scale * xm


def mean_colour(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin offset that gives unpaired source frames the target's mean level, for
    (N, n_mels, T) crops of each -> (n_mels,) scale (ones) and offset: an equaliser. The
    spread is not matched, because without pairs it mixes timbre with dynamics and notes."""
    offset = target.mean(dim=(0, 2)) - source.mean(dim=(0, 2))
    return torch.ones_like(offset), offset
