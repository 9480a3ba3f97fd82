"""Write a track's output as its segments arrive: the cross-fade sums carried over each
segment border are added, the audio is levelled, resampled to the output rate in blocks and
peak-limited, and goes to a temp file renamed when complete (``FileSink``) or to memory
(``ArraySink``).
Nothing is left behind by a failure: the output either exists complete or not at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .atomic import TempLock, temp_beside
from .audio import AudioError, AudioInfo
from .config import MelConfig
from .errors import write_reason
from .limiter import Limiter
from .loudness import Leveller
from .resampling import StreamResampler
from .streaming import BLOCK_SECONDS, Segment


class TrackWriter:
    """Assembles a track's output as its segments arrive: adds the cross-fade sums carried
    over a segment border, resamples to the output rate, limits peaks to -0.3 dBFS (also
    with ``level=False``: clipped audio is never written), and hands the samples to ``sink``
    (a ``FileSink`` or an ``ArraySink``). Any failure or ``abort`` leaves no output."""

    def __init__(self, path: Path, info: AudioInfo, rate: int, cfg: MelConfig, length: int, sink: FileSink | ArraySink,
                 level: bool = True):  # fmt: skip
        self.path, self.info, self.rate, self.sink = path, info, rate, sink
        self.leveller = Leveller(cfg.hop_length) if level else None
        self.hop = cfg.hop_length
        self.length = length  # model-rate samples to emit in all
        self.frames = max(1, round(info.frames * rate / info.sample_rate))  # output samples, exactly
        self._resampler = StreamResampler(cfg.sample_rate, rate)
        self._limiter = Limiter(rate)  # at the output rate, so the written samples are what it bounds
        self._taken = 0  # output-rate samples given to the limiter
        self._carry: tuple[torch.Tensor, torch.Tensor] | None = None
        self._emitted = 0
        self._written = 0

    def add(self, segment: Segment, out: torch.Tensor, total: torch.Tensor) -> bool:
        """Add a segment's weighted sums (from ``chunking.accumulate``); True once complete."""
        if self._carry is not None:
            n = self._carry[1].shape[-1]
            out[..., :n] += self._carry[0]
            total[:n] += self._carry[1]
        cut = segment.emit * self.hop
        self._carry = (out[..., cut:].clone(), total[cut:].clone())  # not a view: frees ``out``
        ready = out[..., :cut] / total[:cut]
        ready = ready[..., : self.length - self._emitted]
        self._emitted += ready.shape[-1]
        if not bool(torch.isfinite(ready).all()):  # broken weights or an overflow: never write NaN audio
            self.abort()
            raise AudioError(f"{self.path}: the models gave NaN or infinite audio; not written")
        if self.leveller is not None:
            ready = self.leveller.push(ready, segment.energy, segment.last)
        try:
            # In blocks: resampling and encoding a whole segment at once would make several
            # copies of it (resampled, all channels, interleaved) at the output rate.
            block = int(BLOCK_SECONDS * self._resampler.source_rate)
            for at in range(0, max(ready.shape[-1], 1), block):
                last = segment.last and at + block >= ready.shape[-1]
                self._write(self._resampler.push(ready[..., at : at + block], last=last))
            if segment.last:
                self._finish()
        except AudioError:
            self.abort()
            raise
        return segment.last

    def _write(self, wave: torch.Tensor, last: bool = False) -> None:
        wave = wave[..., : self.frames - self._taken]
        self._taken += wave.shape[-1]
        data = self._limiter.push(wave.numpy(), last=last)  # holds back its look-ahead until ``last``
        if data.shape[-1] == 0:
            return
        if data.shape[0] != self.info.channels:
            data = np.broadcast_to(data, (self.info.channels, data.shape[-1]))
        data = np.ascontiguousarray(data.T)
        try:
            self.sink.write(data)
        except Exception as exc:
            raise AudioError(f"{self.path}: cannot write output: {write_reason(exc, self.path.parent)}") from None
        self._written += data.shape[0]

    def _finish(self) -> None:
        # The model-rate audio may come out a sample or two short: silence makes up the count.
        channels = 1 if self._limiter.pending is None else self._limiter.pending.shape[0]
        self._write(torch.zeros(channels, self.frames - self._taken), last=True)
        try:
            self.sink.commit()
        except Exception as exc:
            raise AudioError(f"{self.path}: cannot write output: {write_reason(exc, self.path.parent)}") from None

    def abort(self) -> None:
        """Drop what was written; later segments of this track are ignored."""
        self.sink.abort()


class FileSink:
    """An output file, written to a temp file beside it and renamed when complete."""

    def __init__(self, path: Path, rate: int, channels: int, container: str, subtype: str | None):
        self.path, self.rate, self.channels = path, rate, channels
        self.container, self.subtype = container, subtype
        self._tmp: str | None = None
        self._lock: TempLock | None = None  # tells a later run's remove_stale the file is in use
        self._file: sf.SoundFile | None = None

    def write(self, data: np.ndarray) -> None:
        """Append (frames, channels) float32 samples."""
        if self._file is None:
            self._tmp = temp_beside(self.path)
            self._lock = TempLock(self._tmp)
            self._file = sf.SoundFile(
                self._tmp, "w", self.rate, self.channels, subtype=self.subtype, format=self.container
            )
        self._file.write(data)

    def commit(self) -> None:
        self._file.close()
        os.replace(self._tmp, self.path)
        self._file, self._tmp = None, None
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def abort(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except Exception:
                pass
            self._file = None
        if self._tmp is not None:
            Path(self._tmp).unlink(missing_ok=True)
            self._tmp = None
        self._unlock()


class ArraySink:
    """Output kept in memory: ``data`` is (frames, channels) float32 once committed."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.data: np.ndarray | None = None

    def write(self, data: np.ndarray) -> None:
        self.parts.append(data)

    def commit(self) -> None:
        self.data, self.parts = np.concatenate(self.parts), []

    def abort(self) -> None:
        self.parts = []
