"""phase.integrate: the running sum of an integrated-phase vocoder."""

from __future__ import annotations

import math

import pytest
import torch

from genreshift import phase


def _wrapped(x: torch.Tensor) -> torch.Tensor:
    """x moved into [-pi, pi)."""
    return torch.remainder(x + torch.pi, 2 * torch.pi) - torch.pi


def _inputs(frames: int = 70, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    magnitude = torch.rand(2, 33, frames, generator=g) + 0.01
    return magnitude, torch.randn(2, 33, frames, generator=g), torch.randn(2, 33, frames, generator=g)


@pytest.mark.parametrize("cut", [1, 16, 37])
def test_two_calls_with_the_state_between_give_one_calls_spectrum(cut):
    m, a, o = _inputs()
    whole, _ = phase.integrate(m, a, o)
    first, state = phase.integrate(m[..., :cut], a[..., :cut], o[..., :cut])
    rest, _ = phase.integrate(m[..., cut:], a[..., cut:], o[..., cut:], state)
    assert torch.allclose(torch.cat([first, rest], -1), whole, atol=1e-5)
    # the state of any frame, not only the last
    _, state = phase.integrate(m, a, o, state_at=cut - 1)
    rest, _ = phase.integrate(m[..., cut:], a[..., cut:], o[..., cut:], state)
    assert torch.allclose(rest, whole[..., cut:], atol=1e-5)
    # ... and without the state the rest starts afresh, which differs
    fresh, _ = phase.integrate(m[..., cut:], a[..., cut:], o[..., cut:])
    assert not torch.allclose(fresh, whole[..., cut:], atol=1e-2)


def test_magnitude_is_kept_and_an_onset_takes_the_offsets_phase():
    m, a, o = _inputs()
    spec, _ = phase.integrate(m, a, o)
    assert torch.allclose(spec.abs(), m, atol=1e-5)
    # frame 0 rises from silence: all of it is new energy, at the offsets' phase
    assert torch.allclose(spec[..., 0], torch.polar(m[..., 0], o[..., 0]), atol=1e-5)


def test_a_fading_bin_keeps_turning_by_its_advance():
    frames = 40
    m = torch.linspace(1.0, 0.1, frames).expand(1, 5, frames).contiguous()  # never rises after frame 0
    a = torch.full((1, 5, frames), 0.7)
    o = torch.zeros(1, 5, frames)
    turn = torch.diff(phase.integrate(m, a, o)[0].angle(), dim=-1)
    assert torch.allclose(_wrapped(turn - 0.7), torch.zeros(()), atol=1e-4)


def test_the_priors_are_a_steady_tones_advance_and_offsets():
    """A sinusoid at a bin's centre turns by that bin's advance each hop, and its neighbouring
    bins are pi apart, on the iSTFT's frames (which start at the frame's first sample)."""
    n_fft, hop, k = 1024, 256, 40
    t = torch.arange(n_fft + 8 * hop, dtype=torch.float64)
    x = torch.cos(2 * torch.pi * k * t / n_fft)
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64), center=False,
                      return_complex=True)  # fmt: skip
    angle = spec.angle().float()
    turn = torch.diff(angle[k]) - phase.bin_advance(n_fft, hop)[k]
    assert torch.allclose(_wrapped(turn), torch.zeros(()), atol=1e-3)
    step = angle[k + 1] - angle[k] - (phase.bin_offset(n_fft)[k + 1] - phase.bin_offset(n_fft)[k])
    assert torch.allclose(_wrapped(step), torch.zeros(()), atol=1e-3)


def _recurrence(m, a, o):
    """The module docstring's recurrence, one frame at a time, in float64 complex."""
    m, a, o = m.double(), a.double(), o.double()
    z = torch.zeros(m.shape[:-1], dtype=torch.complex128)
    before = torch.zeros(m.shape[:-1], dtype=torch.float64)
    out = []
    for t in range(m.shape[-1]):
        # min(1, m(t) / m(t-1)), at least exp(MIN_LOG_KEEP); a silent bin stays silent (0 / 0 keeps all)
        keep = (m[..., t].clamp(min=1e-30) / before.clamp(min=1e-30)).clamp(min=math.exp(phase.MIN_LOG_KEEP), max=1.0)
        z = torch.polar(keep, a[..., t]) * z + torch.polar((m[..., t] - before).clamp(min=0), o[..., t])
        out.append(m[..., t] * torch.sgn(z))
        before = m[..., t]
    return torch.stack(out, -1)


@pytest.mark.parametrize("frames", [5, 16, 70])
def test_the_block_scan_is_the_frame_by_frame_recurrence(frames):
    """The scan (blocks of BLOCK frames, real arithmetic) gives the recurrence it documents,
    with silent stretches (the old energy gone) and fades in it."""
    m, a, o = _inputs(frames, seed=3)
    m[..., frames // 3 : frames // 2] = 0
    m[0, :5] = torch.linspace(1.0, 1e-4, frames)  # a fade past the MIN_LOG_KEEP bound per frame
    spec, _ = phase.integrate(m, a, o)
    assert torch.allclose(spec.to(torch.complex128), _recurrence(m, a, o), atol=2e-4)
