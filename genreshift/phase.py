"""Integrated phase: the fast vocoder v3 carries each STFT bin's phase from frame to frame.

A net that maps mel frames to STFT frames with convolutions gives the same output for the
same neighbourhood, so for a held note (identical mel frames) it gives every frame the same
phase: the output then repeats every hop (256 samples), and a 440 Hz tone comes out on the
harmonics of 86 Hz. Griffin-Lim repaired this in v2, at 4x the cost. Chunked autoregressive
vocoders (CARGAN, Morrison et al. 2022) name the cause: a phase is a running sum of
frequencies, which no shift-invariant net computes.

So the v3 net predicts, per bin and frame, quantities a shift-invariant net *can* predict,
and this module does the running sum:

- ``advance``: how far the bin's phase turns from one frame to the next (its instantaneous
  frequency times the hop), as ``bin_advance`` (the bin's centre frequency) plus a learned
  deviation;
- ``offset``: the phase a sound *starting* in this frame has, which fixes how the bins of one
  partial line up (pi apart for neighbouring bins of a steady tone, ``bin_offset``) plus a
  learned deviation.

The recurrence keeps, per bin, a complex amplitude ``Z``. Energy already in the bin turns by
the advance (and fades with the bin's magnitude ``m``); energy that is new in this frame
enters at the offset's phase:

    Z(t) = exp(i advance(t)) * min(1, m(t) / m(t-1)) * Z(t-1) + max(0, m(t) - m(t-1)) * exp(i offset(t))

and the spectrum is ``m(t) * Z(t) / |Z(t)|``. A held note keeps turning at its own frequency;
an onset takes the offsets' phases, which line up its bins. The recurrence is linear, so it
runs in blocks of ``BLOCK`` frames at once (a scan), and only the blocks' ends are carried
one after another. The state between two calls on consecutive frames of a track is the last
frame's ``Z`` and ``m``, so ``convert`` carries it from window to window (``pipeline``), and
chunked output equals a whole-file pass.
"""

from __future__ import annotations

import math

import torch

BLOCK = 16  # frames per step of the scan
MIN_LOG_KEEP = -5.0  # a frame keeps at least exp(-5) = 0.7% of a bin's old energy


def bin_advance(n_fft: int, hop: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(F,): the phase advance per hop of a sinusoid at each bin's centre frequency."""
    k = torch.arange(n_fft // 2 + 1, device=device, dtype=torch.float32)
    return 2 * math.pi * k * hop / n_fft


def bin_offset(n_fft: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(F,): pi * k, the phases of a steady tone's bins relative to each other, on STFT frames
    that start (not centre) at the frame's first sample, as ``torch.stft`` and the vocoder's
    iSTFT do."""
    k = torch.arange(n_fft // 2 + 1, device=device, dtype=torch.float32)
    return math.pi * k


def integrate(
    magnitude: torch.Tensor,
    advance: torch.Tensor,
    offset: torch.Tensor,
    state: torch.Tensor | None = None,
    state_at: int = -1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The complex spectrum (B, F, T) of ``magnitude`` with integrated phase, and the state
    after frame ``state_at``, (B, F, 2) complex: that frame's ``Z`` and ``m``.

    ``state`` is such a state for the frame before the first (from an earlier call on the
    frames just before these), or None at the start of a track.
    """
    m = magnitude.detach().float()  # the gates follow the magnitude; they teach it nothing
    batch, bins, frames = m.shape
    if state is None:
        zr = zi = m.new_zeros(batch, bins)
        before = m.new_zeros(batch, bins, 1)
    else:
        zr, zi, before = state[..., 0].real.float(), state[..., 0].imag.float(), state[..., 1:].real.float()
    previous = torch.cat([before, m[..., :-1]], dim=-1)
    # log of the share of the old energy that stays; below MIN_LOG_KEEP per frame it is gone
    # anyway, and the bound keeps a block's products inside float32
    log_keep = torch.log(m.clamp(min=1e-30) / previous.clamp(min=1e-30)).clamp(min=MIN_LOG_KEEP, max=0.0)
    new = (m - previous).clamp(min=0.0)
    pad = -frames % BLOCK
    parts = [torch.nn.functional.pad(x, (0, pad)) for x in (log_keep, new, advance.float(), offset.float())]
    log_keep, new, advance, offset = (x.unflatten(-1, (-1, BLOCK)) for x in parts)  # (B, F, blocks, BLOCK)
    # Within a block, from a zero start: Z(t) = K(t) sum_{u <= t} new(u) exp(i offset(u)) / K(u),
    # with K(t) the product of the turns and fades up to t. Complex numbers are kept as
    # (real, imaginary) pairs of float tensors: on a CPU, torch's complex polar was 6x slower
    # than cos and sin, and its backward made training through this scan 3.5x slower.
    log_k, turn = torch.cumsum(log_keep, -1), torch.cumsum(advance, -1)
    size = torch.exp(log_k)
    kr, ki = size * torch.cos(turn), size * torch.sin(turn)
    entering, angle = new / size, offset - turn
    cr, ci = torch.cumsum(entering * torch.cos(angle), -1), torch.cumsum(entering * torch.sin(angle), -1)
    own_r, own_i = kr * cr - ki * ci, kr * ci + ki * cr
    # each block starts where the one before ended; its end values, block-major and
    # contiguous, keep this sequential loop's small steps cheap
    ends = [x[..., -1].permute(2, 0, 1).contiguous() for x in (kr, ki, own_r, own_i)]
    starts_r, starts_i = [], []
    for a, b, c, d in zip(*ends):
        starts_r.append(zr)
        starts_i.append(zi)
        zr, zi = a * zr - b * zi + c, a * zi + b * zr + d
    sr, si = torch.stack(starts_r, -1).unsqueeze(-1), torch.stack(starts_i, -1).unsqueeze(-1)
    zr = (kr * sr - ki * si + own_r).flatten(-2)[..., :frames]
    zi = (kr * si + ki * sr + own_i).flatten(-2)[..., :frames]
    # magnitude * Z / |Z| (0 where Z is 0, as torch.sgn)
    norm = torch.sqrt(zr * zr + zi * zi)
    scale = torch.where(norm > 0, magnitude / norm.clamp(min=1e-30), torch.zeros_like(norm))
    spec = torch.view_as_complex(torch.stack([zr * scale, zi * scale], -1))
    z = torch.complex(zr[..., state_at], zi[..., state_at])
    return spec, torch.stack([z, m[..., state_at].to(torch.complex64)], dim=-1)
