"""Resampling between the input's rate and the models' 22050 Hz, whole or streamed in blocks.

torchaudio's sinc resampling (a Hann-windowed sinc, 6 zero crossings, roll-off 0.99) does it
with one kernel row per output phase: ``up`` rows of ``down`` + 2 x width taps, where
``down / up`` is the ratio of the rates reduced by their greatest common divisor. For the
usual rates that is small (48000 -> 22050 is 147 rows of 348), but a rate with little in
common with 22050 makes it enormous: 44101 Hz gives 22050 rows of 44127 taps, about 4 GB,
and a 3-second file took 17 GB and 2.5 minutes. Such "awkward" ratios are resampled here with
the same windowed sinc evaluated at each output sample's own position instead, a few dozen
taps per sample: the same filter, so the same result to float rounding.
"""

from __future__ import annotations

import math

import torch
import torchaudio

# torchaudio.functional.resample's defaults, which both ways of resampling here follow.
_LOWPASS_WIDTH, _ROLLOFF = 6, 0.99
# Elements of torchaudio's kernel (16 MB of float32) above which a ratio counts as awkward.
AWKWARD_KERNEL = 1 << 22
_BLOCK = 16384  # output samples computed at once on the awkward path: bounds its memory


def _reduced(source_rate: int, target_rate: int) -> tuple[int, int]:
    g = math.gcd(source_rate, target_rate)
    return source_rate // g, target_rate // g


def _step_width(down: int, up: int) -> int:
    """Input samples torchaudio's kernel reaches beyond one step's own ``down``."""
    return math.ceil(_LOWPASS_WIDTH * down / (min(down, up) * _ROLLOFF))


def is_awkward(source_rate: int, target_rate: int) -> bool:
    """Whether torchaudio's kernel for these rates would be too large to build."""
    down, up = _reduced(source_rate, target_rate)
    return up * (down + 2 * _step_width(down, up)) > AWKWARD_KERNEL


def resampled_length(length: int, source_rate: int, target_rate: int) -> int:
    return -(-length * target_rate // source_rate)


def resample(audio: torch.Tensor, source_rate: int, target_rate: int) -> torch.Tensor:
    """Band-limited sinc resampling of (..., n) audio; a no-op when the rates match."""
    if source_rate == target_rate:
        return audio
    if is_awkward(source_rate, target_rate):
        n = resampled_length(audio.shape[-1], source_rate, target_rate)
        return _sinc_at(audio, 0, source_rate, target_rate, 0, n)
    return torchaudio.functional.resample(audio, source_rate, target_rate)


def _reach(source_rate: int, target_rate: int) -> float:
    """Input samples on each side of its position that an output sample reads."""
    return _LOWPASS_WIDTH * source_rate / (_ROLLOFF * min(source_rate, target_rate))


def _first_tap(j: torch.Tensor, source_rate: int, target_rate: int) -> torch.Tensor:
    """The first input sample output sample ``j`` reads (int64)."""
    return torch.floor(j.double() * source_rate / target_rate - _reach(source_rate, target_rate)).long()


def _taps(source_rate: int, target_rate: int) -> int:
    return math.floor(2 * _reach(source_rate, target_rate)) + 2


def _sinc_at(x: torch.Tensor, start: int, source_rate: int, target_rate: int, j0: int, j1: int) -> torch.Tensor:
    """Output samples ``j0`` to ``j1`` of resampling a signal of which ``x`` (..., n) holds the
    input samples from ``start`` on (zero elsewhere): torchaudio's kernel, evaluated at each
    output sample's position. An output depends only on its index and the input, so any
    split into calls gives the same samples."""
    if x.shape[-1] == 0:
        return x.new_zeros(*x.shape[:-1], max(0, j1 - j0))
    base = _ROLLOFF * min(source_rate, target_rate)  # the filter's cut-off, as a rate
    taps = torch.arange(_taps(source_rate, target_rate))
    outs = []
    for a in range(j0, j1, _BLOCK):
        j = torch.arange(a, min(j1, a + _BLOCK), dtype=torch.int64)
        n = _first_tap(j, source_rate, target_rate)[:, None] + taps  # (J, taps) input samples
        # time from output j to input n in input periods of the filter; exact in integers first
        t = (n * target_rate - j[:, None] * source_rate).double() * (base / (source_rate * target_rate))
        t = t.clamp(-_LOWPASS_WIDTH, _LOWPASS_WIDTH)
        window = torch.cos(t * (math.pi / _LOWPASS_WIDTH / 2)) ** 2
        pt = t * math.pi
        sinc = torch.where(pt == 0, torch.ones_like(pt), torch.sin(pt) / torch.where(pt == 0, 1.0, pt))
        kernel = (sinc * window * (base / source_rate)).to(x.dtype)
        local = n - start
        inside = (local >= 0) & (local < x.shape[-1])
        values = x[..., local.clamp(0, x.shape[-1] - 1).flatten()].unflatten(-1, local.shape)
        outs.append((values * (kernel * inside)).sum(-1))
    if not outs:
        return x.new_zeros(*x.shape[:-1], 0)
    return torch.cat(outs, dim=-1)


class StreamResampler:
    """Sinc resampling fed in blocks, giving what resampling the whole stream at once gives
    (the filter is local: each output reads a fixed stretch of input, so only that much is
    kept between blocks)."""

    def __init__(self, source_rate: int, target_rate: int):
        self.source_rate, self.target_rate = source_rate, target_rate
        self.awkward = is_awkward(source_rate, target_rate)
        self.down, self.up = _reduced(source_rate, target_rate)  # input / output samples per step
        self.width = _step_width(self.down, self.up)
        self.buf: torch.Tensor | None = None  # input from sample ``start``
        self.start = 0
        self.fed = 0  # input samples pushed so far
        self.step = 0  # next output step (torchaudio) or output sample (awkward) to give out

    def push(self, x: torch.Tensor, last: bool = False) -> torch.Tensor:
        """Append (channels, n) input; return every output sample that is now final."""
        if self.source_rate == self.target_rate:
            return x
        self.buf = x if self.buf is None else torch.cat([self.buf, x], dim=-1)
        self.fed += x.shape[-1]
        return self._push_awkward(last) if self.awkward else self._push_steps(last)

    def _push_steps(self, last: bool) -> torch.Tensor:
        """torchaudio on the kept input, whole steps of ``down`` inputs -> ``up`` outputs."""
        if last:
            stop = -(-resampled_length(self.fed, self.source_rate, self.target_rate) // self.up)
        else:  # steps whose input reach lies inside what was fed
            stop = max(self.step, (self.fed - self.width) // self.down)
        if stop <= self.step or self.buf.shape[-1] == 0:
            return self.buf.new_zeros(*self.buf.shape[:-1], 0)
        first = self.start // self.down
        out = torchaudio.functional.resample(self.buf, self.source_rate, self.target_rate)
        out = out[..., (self.step - first) * self.up : (stop - first) * self.up]
        if last:
            out = out[..., : resampled_length(self.fed, self.source_rate, self.target_rate) - self.step * self.up]
        self.step = stop
        keep = max(0, (stop * self.down - self.width) // self.down * self.down)  # the next step's reach
        self.buf, self.start = self.buf[..., keep - self.start :], keep
        return out

    def _push_awkward(self, last: bool) -> torch.Tensor:
        """Every output sample whose taps all lie inside what was fed (all of them at the end)."""
        src, dst = self.source_rate, self.target_rate
        if last:
            stop = resampled_length(self.fed, src, dst)
        else:
            stop = max(self.step, math.floor((self.fed - _taps(src, dst) + _reach(src, dst)) * dst / src))
            while stop > self.step and int(_first_tap(torch.tensor(stop - 1), src, dst)) + _taps(src, dst) > self.fed:
                stop -= 1  # float rounding of the estimate: its last tap must have been fed
        out = _sinc_at(self.buf, self.start, src, dst, self.step, stop)
        self.step = stop
        keep = max(self.start, int(_first_tap(torch.tensor(stop), src, dst)))
        self.buf, self.start = self.buf[..., keep - self.start :], keep
        return out
