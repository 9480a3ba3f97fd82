"""Keep the output as loud as the input.

The translator and vocoder do not preserve level: a genre may come out several dB louder
or quieter than the input, and a band-limited input can come out near full scale.
``Leveller`` mends it, streaming (a track is written segment by segment): a gain per block
of BLOCK_FRAMES mel frames that brings the output's RMS, over the BLOCK_RADIUS blocks around
it, to the input's over the same stretch, within MAX_BOOST_DB / MAX_CUT_DB. Between block
centres the gain is interpolated linearly, so it never jumps. Blocks lie on a fixed grid of
the track, not of the streaming segments, so the output does not depend on
``--segment-seconds``. Peaks the levelled output would put past -0.3 dBFS are left to the
limiter (``limiter.py``), at the output rate.
"""

from __future__ import annotations

import math

import numpy as np
import torch

BLOCK_FRAMES = 64  # 0.74 s at 22050 Hz / hop 256
BLOCK_RADIUS = 2  # RMS over 5 blocks (3.7 s) decides a block's gain: slow enough not to pump
MAX_BOOST_DB = 12.0  # a quiet output is not lifted further: that would lift noise too
MAX_CUT_DB = 24.0
FLOOR_POWER = 1e-8  # -80 dBFS: silent stretches of input and output give gain 1
NOTE_DB = 3.0  # a track whose output needed more correction than this is pointed out


class Leveller:
    """Per-block loudness matching of a stream of model-rate output against the input.

    ``push`` takes output samples (C, n) and the input's energy per mel frame for the same
    stretch; it returns the samples whose gain is settled (it holds back about
    (BLOCK_RADIUS + 1.5) blocks, as a block's gain needs the blocks after it).
    """

    def __init__(self, hop: int, block_frames: int = BLOCK_FRAMES, radius: int = BLOCK_RADIUS,
                 max_boost_db: float = MAX_BOOST_DB, max_cut_db: float = MAX_CUT_DB):  # fmt: skip
        self.hop, self.block, self.radius = hop, block_frames, radius
        self.lo, self.hi = 10 ** (-max_cut_db / 20), 10 ** (max_boost_db / 20)
        self.e_in: list[float] = []  # per block: input energy (sum of squares, model-rate samples)
        self.e_out: list[float] = []
        self.frames = 0  # frames pushed so far
        self.gains: list[float] = []  # settled gains, block by block
        self.pending: torch.Tensor | None = None  # output samples from ``emitted`` not yet given out
        self.emitted = 0
        self.limited = False  # some block wanted more than the gain limit allows

    def push(self, out: torch.Tensor, in_energy: np.ndarray, last: bool) -> torch.Tensor:
        """``in_energy[j]``: input energy of frame ``self.frames + j``; ``out`` covers those
        frames (the final call may end inside its last frame)."""
        n_frames = len(in_energy)
        padded = torch.nn.functional.pad(out, (0, n_frames * self.hop - out.shape[-1]))
        out_energy = padded.double().pow(2).mean(dim=0).reshape(n_frames, self.hop).sum(dim=1).numpy()
        self._add(self.e_in, in_energy)
        self._add(self.e_out, out_energy)
        self.frames += n_frames
        self.pending = out if self.pending is None else torch.cat([self.pending, out], dim=-1)
        self._settle(last)
        return self._release(last)

    def _add(self, sums: list[float], energy: np.ndarray) -> None:
        idx = (self.frames + np.arange(len(energy))) // self.block
        if len(idx) == 0:
            return
        first = int(idx[0])
        per_block = np.bincount(idx - first, weights=np.asarray(energy, np.float64))
        for k, e in enumerate(per_block, start=first):
            if k < len(sums):
                sums[k] += float(e)
            else:
                sums.append(float(e))

    def _settle(self, last: bool) -> None:
        """Fix the gain of every block whose neighbourhood is complete."""
        complete = len(self.e_in) if last else self.frames // self.block
        while len(self.gains) < len(self.e_in) and (last or len(self.gains) + self.radius < complete):
            k = len(self.gains)
            a, b = max(0, k - self.radius), min(len(self.e_in), k + self.radius + 1)
            floor = FLOOR_POWER * (min(self.frames, b * self.block) - a * self.block) * self.hop
            wanted = math.sqrt((sum(self.e_in[a:b]) + floor) / (sum(self.e_out[a:b]) + floor))
            self.limited |= not self.lo <= wanted <= self.hi
            self.gains.append(min(max(wanted, self.lo), self.hi))

    def _release(self, last: bool) -> torch.Tensor:
        """The pending samples whose gain depends only on settled blocks, with that gain."""
        assert self.pending is not None
        span = self.block * self.hop
        if last:
            stop = self.emitted + self.pending.shape[-1]
        else:  # up to the centre of the last settled block
            stop = max(self.emitted, int((len(self.gains) - 0.5) * span)) if self.gains else self.emitted
        n = stop - self.emitted
        if not self.gains:  # nothing measured (no frames): nothing to correct
            n = self.pending.shape[-1] if last else 0
            ready, self.pending, self.emitted = self.pending[..., :n], self.pending[..., n:], self.emitted + n
            return ready
        if n <= 0:
            return self.pending[..., :0]
        centres = (np.arange(len(self.gains)) + 0.5) * span
        gain = np.interp(np.arange(self.emitted, stop) + 0.5, centres, self.gains)
        ready = self.pending[..., :n] * torch.from_numpy(gain).to(self.pending.dtype)
        self.pending = self.pending[..., n:]
        self.emitted = stop
        return ready

    @property
    def correction_db(self) -> float:
        """How much louder (+) or quieter (-) the output had to be made, over the whole track."""
        floor = FLOOR_POWER * max(1, self.frames) * self.hop
        return 10 * math.log10((sum(self.e_in) + floor) / (sum(self.e_out) + floor))

    @property
    def gain_db(self) -> float:
        """The gain applied over the whole track, within the limits: the output's energy
        after levelling over its energy before (each block's gain weighted by its energy)."""
        e_out = np.asarray(self.e_out[: len(self.gains)])
        floor = FLOOR_POWER * max(1, self.frames) * self.hop
        return 10 * math.log10((float(np.square(self.gains) @ e_out) + floor) / (float(e_out.sum()) + floor))
