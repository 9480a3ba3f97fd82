"""A streaming look-ahead peak limiter: no output sample reaches past CEILING (-0.3 dBFS).

It replaces a pointwise soft knee, which bent every sample above 0.8 on its own: that is
distortion on every loud peak, and it piled samples just under full scale (0.15-0.18% of
the output of quiet game music; a full-scale square wave came out 26% at the knee's top).
A limiter instead turns the whole signal down for a moment around a peak, with a gain
that moves slowly enough to be heard as level, not as distortion:

1. Detect (``_Detector``): the peak of each sample and of the signal on either side of it,
   estimated by 4x oversampling (a 16-tap Kaiser-windowed sinc per phase), the largest of
   all channels. So the gain follows true (inter-sample) peaks, not only sample peaks:
   samples hold the ceiling exactly, 4x-oversampled peaks within a small margin (the gain
   changes a little across the filter's reach, and no short filter is exact near the
   Nyquist frequency; docs/pipeline.md has measured figures). One gain for all channels
   (linked), so the stereo image does not move.
2. The gain is worked out on a grid of BLOCK seconds (``_Blocks``: a block's largest peak,
   as a reduction in dB), a few samples per block, and drawn between block starts as
   straight lines. A block's reduction is at least that of its own samples and the next
   block's start holds it too (step 3 holds back at least one block), so the line between
   the two cannot undershoot either. That keeps the per-sample work to the detector, one
   interpolation and one multiply.
3. Hold (``_Hold``): the largest reduction wanted from HOLD before a block to LOOKAHEAD
   after it. Looking ahead lets the gain be down already when the peak comes; holding keeps
   it down through a half period of a bass note down to 25 Hz, so a steady loud note gets a
   steady gain instead of one that wobbles at twice its frequency (that would be distortion).
4. Release (``_Release``): then the reduction in dB decays by 1/e every RELEASE (a one-pole
   release on a dB gain): one loud drum hit does not dim the next second, and the gain
   moves too slowly to pump on dense music.
5. Attack (``_Box`` twice): the reduction is averaged over the past LOOKAHEAD with a
   triangular kernel (two boxes), so the gain bends down along a smooth S-curve that
   starts LOOKAHEAD before the peak and reaches its depth at the peak. Every value in that
   average is at least the peak's reduction (step 3 held it over the whole look-ahead), so
   the average is too: the bound holds at every sample, not on average.

All of it works in dB, where "no reduction" is exactly 0 and the gain exactly 1, so a signal
that never needs a reduction is passed on bit for bit. Each step streams with a fixed delay
and keeps only the few values its window reaches back, and blocks lie on a grid of the
track, so the output does not depend on how the audio is cut into pushes (to float
rounding: sums are formed per push). Outside the track is silence. Everything is
vectorised numpy (running sums and maxima, the release in closed form).
"""

from __future__ import annotations

import math

import numpy as np
import torch

CEILING_DB = -0.3
# float32(10 ** (-0.3 / 20)) rounds up: the float32 just below it, so a sample at the ceiling is under -0.3 dBFS.
CEILING = float(np.nextafter(np.float32(10 ** (CEILING_DB / 20)), np.float32(0)))
LOOKAHEAD = 0.005  # seconds: shorter than a drum's attack, long enough for a smooth gain curve
HOLD = 0.020  # seconds: a half period at 25 Hz
RELEASE = 0.100  # seconds for the reduction (in dB) to fall to 1/e
BLOCK = 0.00025  # seconds per point of the gain curve (11 samples at 44.1 kHz)
OVERSAMPLE = 4  # 3 estimates between samples (the detector is written for these 3)
TAPS = 16  # per phase of the true-peak interpolator: 8 samples each side
KAISER_BETA = 6.0  # within 0.005 dB of an exact interpolation for content up to half the sample rate
SEGMENT = 256  # estimates per unit of the detector's skipping of quiet stretches
SNAP_DB = 1e-7  # a fading reduction this small is none (gain 1 - 1.2e-8: below float32 rounding)


def interpolator() -> np.ndarray:
    """(OVERSAMPLE - 1, TAPS): row p - 1 estimates x(n + p / OVERSAMPLE) from x[n - 7 .. n + 8]."""
    half = TAPS // 2
    k = np.arange(TAPS) - (half - 1)
    t = k[None, :] - np.arange(1, OVERSAMPLE)[:, None] / OVERSAMPLE
    window = np.i0(KAISER_BETA * np.sqrt(np.clip(1 - (t / half) ** 2, 0, None))) / np.i0(KAISER_BETA)
    h = np.sinc(t) * window
    return h / h.sum(axis=1, keepdims=True)  # each phase passes a constant unchanged


def reduction_db(peak: np.ndarray, ceiling: float = CEILING) -> np.ndarray:
    """The cut in dB (>= 0) that brings ``peak`` to ``ceiling``; exactly 0 where it is not over."""
    out = np.zeros(peak.shape, np.float64)
    over = peak > ceiling
    out[over] = 20 * np.log10(peak[over].astype(np.float64) / ceiling)
    return out


class _Detector:
    """(C, n) samples -> per sample, the largest |x| over the channels at it and on either
    side of it (to the neighbouring samples, 4x oversampled); delay TAPS // 2 samples."""

    def __init__(self, ceiling: float):
        h = interpolator()
        self.kernel = torch.from_numpy(np.ascontiguousarray(h.T, np.float32))  # (TAPS, phases)
        self.reach = TAPS // 2
        self.quiet = ceiling / max(1.0, float(np.abs(h).sum(axis=1).max()))  # |x| below this: no estimate is over
        self.tail: np.ndarray | None = None  # x[done - reach : pushed]; before the track, silence

    def push(self, x: np.ndarray, last: bool) -> np.ndarray:
        if self.tail is None:
            self.tail = np.zeros((x.shape[0], self.reach), np.float32)
        buf = np.concatenate([self.tail, x], axis=1)
        if last:
            buf = np.pad(buf, ((0, 0), (0, self.reach)))
        r = self.reach
        n = buf.shape[1] - 2 * r  # samples whose neighbourhood is all here
        if n <= 0:
            self.tail = buf
            return np.zeros(0, np.float32)
        self.tail = buf[:, n:]
        linked = np.abs(buf).max(axis=0)
        between = np.zeros(n + 1, np.float32)  # between[j]: largest estimate between samples j - 1 and j
        for lo, hi in self._loud_runs(linked, n + 1):  # elsewhere no estimate can pass the ceiling
            between[lo:hi] = self._estimates(buf[:, lo : hi + TAPS - 1])
        return np.maximum(linked[r : r + n], np.maximum(between[:n], between[1:]))

    def _loud_runs(self, linked: np.ndarray, count: int) -> list[tuple[int, int]]:
        """Runs of SEGMENT estimates that read a sample louder than ``quiet`` (estimate j reads
        ``linked[j : j + TAPS]``): the filter runs only there, which skips quiet passages."""
        loud = np.concatenate([[0], np.cumsum(linked > self.quiet)])
        starts = np.arange(0, count, SEGMENT)
        ends = np.minimum(starts + SEGMENT, count)
        hot = np.concatenate([[False], loud[ends + TAPS - 1] > loud[starts], [False]])
        edges = np.flatnonzero(hot[1:] != hot[:-1])  # run i spans segments edges[2i] .. edges[2i + 1] - 1
        return [(int(starts[i]), int(ends[j - 1])) for i, j in zip(edges[::2], edges[1::2])]

    def _estimates(self, buf: np.ndarray) -> np.ndarray:
        """Largest |estimate| over channels and phases between each TAPS-long window's middle samples."""
        with torch.inference_mode():
            est = (torch.from_numpy(buf).unfold(-1, TAPS, 1) @ self.kernel).abs_()  # (C, windows, phases)
            return est.amax(dim=-1).amax(dim=0).numpy()


class _Blocks:
    """Per-sample peaks -> the largest per block of ``size`` samples on the track's grid. At the
    end, the partial block and one silent block after it (the last line needs an end point)."""

    def __init__(self, size: int):
        self.size = size
        self.tail = np.zeros(0, np.float32)

    def push(self, peak: np.ndarray, last: bool) -> np.ndarray:
        buf = np.concatenate([self.tail, peak])
        if last:
            buf = np.pad(buf, (0, (-len(buf)) % self.size + self.size))
        n = len(buf) // self.size * self.size
        self.tail = buf[n:]
        return buf[:n].reshape(-1, self.size).max(axis=1) if n else np.zeros(0, np.float32)


class _Hold:
    """out[i] = max(d[i - before .. i + ahead]): a sliding maximum with ``ahead`` values of delay."""

    def __init__(self, before: int, ahead: int):
        self.before, self.ahead = before, ahead
        self.tail = np.zeros(before)  # d[done - before : pushed]

    def push(self, d: np.ndarray, last: bool) -> np.ndarray:
        buf = np.concatenate([self.tail, d, np.zeros(self.ahead if last else 0)])
        width = self.before + self.ahead + 1
        n = len(buf) - width + 1
        if n <= 0:
            self.tail = buf
            return np.zeros(0)
        self.tail = buf[n:]
        return np.zeros(n) if not buf.any() else sliding_max(buf, width)


def sliding_max(a: np.ndarray, width: int) -> np.ndarray:
    """max(a[i : i + width]) for each i (van Herk / Gil-Werman: three passes, any width)."""
    n = len(a) - width + 1
    blocks = np.pad(a, (0, (-len(a)) % width), constant_values=-np.inf).reshape(-1, width)
    prefix = np.maximum.accumulate(blocks, axis=1).ravel()
    suffix = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.maximum(suffix[:n], prefix[width - 1 : width - 1 + n])


class _Release:
    """e[i] = max(d[i], decay * e[i - 1]), in closed form: with u = log e the recursion is
    u[i] = max(log d[i], u[i - 1] + log decay), whose solution is a running maximum."""

    CHUNK = 1 << 14  # keeps i * log(decay) small, so the closed form is exact to float rounding

    def __init__(self, decay: float):
        self.log_decay = math.log(decay)
        self.last = 0.0

    def push(self, d: np.ndarray, last: bool) -> np.ndarray:
        return np.concatenate([self._chunk(d[i : i + self.CHUNK]) for i in range(0, len(d), self.CHUNK)] or [d])

    def _chunk(self, d: np.ndarray) -> np.ndarray:
        if self.last == 0.0 and not d.any():
            return d
        steps = np.arange(len(d)) * self.log_decay
        start = math.log(self.last) + self.log_decay if self.last > 0 else -math.inf
        with np.errstate(divide="ignore"):
            e = np.exp(steps + np.maximum(start, np.maximum.accumulate(np.log(d) - steps)))
        e = np.where(e < SNAP_DB, d, e)  # a fading reduction ends; what a value needs itself stays
        self.last = float(e[-1])
        return e


class _Box:
    """A causal moving average over ``width`` values (no delay). Before the first value it
    takes that value as what came before, so a track that starts loud starts turned down:
    there is nothing before it to bend the gain over."""

    def __init__(self, width: int):
        self.width = width
        self.tail: np.ndarray | None = None

    def push(self, d: np.ndarray, last: bool) -> np.ndarray:
        if self.tail is None:
            if len(d) == 0:
                return d
            self.tail = np.full(self.width - 1, d[0])
        buf = np.concatenate([self.tail, d])
        self.tail = buf[len(buf) - (self.width - 1) :]
        if not buf.any():
            return d
        sums = np.cumsum(np.concatenate([[0.0], buf]))
        # Where the window holds only zeros the two sums are equal, so the result is exactly 0.
        return (sums[self.width :] - sums[: -self.width]) / self.width


class Limiter:
    """Streaming linked look-ahead limiter for (channels, samples) float32 audio at ``rate``.

    ``push`` returns the samples whose gain is settled (it holds back 8 samples plus
    LOOKAHEAD and two blocks); the call with ``last=True`` returns the rest, so the output
    has exactly as many samples as the input. With ``keep_gains`` the gain applied to each
    sample is kept in ``gains`` (for tests and measurements).
    """

    def __init__(self, rate: int, ceiling: float = CEILING, lookahead: float = LOOKAHEAD, hold: float = HOLD,
                 release: float = RELEASE, keep_gains: bool = False):  # fmt: skip
        self.ceiling = ceiling
        self.size = max(1, round(BLOCK * rate))  # samples per block
        ahead = max(2, math.ceil(lookahead * rate / self.size))  # in blocks, as the rest below
        self.detector, self.blocks = _Detector(ceiling), _Blocks(self.size)
        self.curve = [
            _Hold(max(1, round(hold * rate / self.size)), ahead),  # at least 1: see step 2 above
            _Release(math.exp(-self.size / max(self.size, release * rate))),
            _Box(ahead // 2 + 1),  # the two boxes make a triangle over ahead + 1 blocks
            _Box(ahead - ahead // 2 + 1),
        ]
        self.start: float | None = None  # the gain at the start of the next block to emit
        self.pending: np.ndarray | None = None  # samples whose gain is not known yet
        self.gains: list[np.ndarray] | None = [] if keep_gains else None

    def push(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        x = np.asarray(x, np.float32)
        self.pending = x if self.pending is None else np.concatenate([self.pending, x], axis=1)
        d = reduction_db(self.blocks.push(self.detector.push(x, last), last), self.ceiling)
        for stage in self.curve:
            d = stage.push(d, last)
        gain = self._draw(10 ** (-d / 20))[: self.pending.shape[1]]
        if self.gains is not None:
            self.gains.append(gain)
        ready, self.pending = self.pending[:, : len(gain)], self.pending[:, len(gain) :]
        if not (gain < 1).any():
            return ready
        out = (ready * gain).astype(np.float32)
        return np.clip(out, -self.ceiling, self.ceiling, out=out)  # only float rounding can reach past it

    def _draw(self, points: np.ndarray) -> np.ndarray:
        """Per-sample gains: straight lines between the gains at block starts."""
        if len(points) == 0:
            return points
        if self.start is not None:
            points = np.concatenate([[self.start], points])
        self.start = float(points[-1])
        a, b = points[:-1], points[1:]
        if len(a) == 0 or (a == 1).all() and (b == 1).all():
            return np.ones(len(a) * self.size)
        t = np.arange(self.size) / self.size
        return (a[:, None] + (b - a)[:, None] * t).ravel()  # exactly 1 where both ends are 1


def limit(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """The limiter over a whole (channels, samples) signal at once."""
    return torch.from_numpy(Limiter(rate).push(audio.float().cpu().numpy(), last=True))
