"""Read, cut and write a track in pieces, so memory does not grow with its length.

A track is decoded in blocks, resampled block by block, and converted as a sequence of
*segments* of whole vocoder windows (about a minute of audio each). Every segment is cut
from the same window plans a whole-file pass would use (``chunking.subplan``), with the
audio, mel and translated mel its windows need on both sides, so each window sees exactly
the neighbourhood it would see in one pass. The vocoder windows that straddle a segment
border are not run twice: each segment hands the weighted sums over its last cross-fade to
the next (``TrackWriter``), which adds its own. The result equals a whole-file pass up to
float rounding, at a cost of a few translator windows per border.
"""

from __future__ import annotations

import os
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from . import chunking
from . import mel as melmod
from .atomic import TempLock, temp_beside
from .audio import AudioError, AudioInfo
from .config import ChunkConfig, MelConfig
from .errors import short_reason, write_reason
from .loudness import Leveller, soft_limit
from .resampling import StreamResampler, resampled_length

BLOCK_SECONDS = 10.0  # decoded, resampled and encoded at a time: bounds transient memory
MEL_CHUNK_FRAMES = 512  # log-mel frames computed at a time (6 s)


class TrackReader:
    """Model-rate audio of one track, decoded on demand in blocks.

    The track is seen as the whole-file front-end sees it: mixed down (unless ``mono`` is
    false), resampled, and zero-padded to ``frames * hop`` samples. Slices must be asked
    for in increasing order; audio before the last slice asked for is let go.
    """

    def __init__(
        self, path: Path, info: AudioInfo, cfg: MelConfig, mono: bool, open_audio: Callable[[], Any] | None = None
    ):
        """``open_audio`` gives something read like an ``sf.SoundFile`` (``ArrayAudio`` for a
        clip in memory); by default ``path`` is opened with soundfile."""
        if info.frames <= 0:
            raise AudioError(f"{path}: contains no audio (0 samples)")
        self.path, self.info, self.cfg, self.mono = path, info, cfg, mono
        self._open = open_audio or (lambda: sf.SoundFile(str(path)))
        self.length = resampled_length(info.frames, info.sample_rate, cfg.sample_rate)
        self.frames = max(cfg.n_fft, -(-self.length // cfg.hop_length) * cfg.hop_length) // cfg.hop_length
        self.channels = 1 if mono else info.channels
        self.peak = 0.0  # loudest model-rate sample decoded so far (silence check)
        self._file: Any = None
        self._decoded = 0  # input samples read
        self._resampler = StreamResampler(info.sample_rate, cfg.sample_rate)
        self._buf = torch.zeros(self.channels, 0)  # model-rate audio from sample ``_start``
        # The input's energy per mel frame, measured on the decoded channels before any
        # mixing or resampling, so loudness is matched to what the listener hears.
        self._power = np.zeros(self.frames)
        self._count = np.zeros(self.frames)
        self._start = 0
        self._done = False

    def samples(self, lo: int, hi: int) -> torch.Tensor:
        """(channels, hi - lo) model-rate samples, zero beyond the end of the audio."""
        if lo < self._start:
            raise ValueError("TrackReader slices must move forward")
        while not self._done and self._start + self._buf.shape[-1] < hi:
            self._read_block()
        drop = lo - self._start
        self._buf, self._start = self._buf[..., drop:], lo
        out = self._buf[..., : hi - lo]
        return F.pad(out, (0, hi - lo - out.shape[-1]))

    @property
    def buffered(self) -> int:
        """Model-rate samples held in memory now (per channel)."""
        return self._buf.shape[-1]

    def _read_block(self) -> None:
        want = min(int(BLOCK_SECONDS * self.info.sample_rate), self.info.frames - self._decoded)
        data = np.zeros((0, self.info.channels), np.float32)
        if want > 0:
            try:
                if self._file is None:
                    self._file = self._open()
                data = self._file.read(want, dtype="float32", always_2d=True)
            except Exception as exc:
                raise AudioError(f"{self.path}: cannot decode audio ({short_reason(exc, last_line=True)})") from None
        if self._decoded == 0 and len(data) == 0:
            raise AudioError(f"{self.path}: contains no audio (0 samples)")
        if not np.isfinite(data).all():
            raise AudioError(f"{self.path}: contains NaN or infinite samples; not converted")
        self._measure(data)
        self._decoded += len(data)
        # A decoder that stops short of the length it reported ends the audio there: the rest
        # of the plan (made from the reported length) sees silence.
        last = len(data) < want or self._decoded >= self.info.frames
        wave = torch.from_numpy(np.ascontiguousarray(data.T))
        if self.mono:
            wave = wave.mean(dim=0, keepdim=True)
        wave = self._resampler.push(wave, last)
        if wave.numel():
            self.peak = max(self.peak, float(wave.abs().max()))
        self._buf = torch.cat([self._buf, wave], dim=-1)
        if last:
            self._buf = self._buf[..., : self.length - self._start]
            self.close()

    def _measure(self, data: np.ndarray) -> None:
        """Add the mean power of each decoded sample to the mel frame it falls in."""
        if not len(data):
            return
        at = np.arange(self._decoded, self._decoded + len(data), dtype=np.int64)
        frame = np.minimum(at * self.cfg.sample_rate // (self.info.sample_rate * self.cfg.hop_length), self.frames - 1)
        first, power = int(frame[0]), np.square(data, dtype=np.float64).mean(axis=1)
        self._power[first : int(frame[-1]) + 1] += np.bincount(frame - first, weights=power)
        self._count[first : int(frame[-1]) + 1] += np.bincount(frame - first)

    def frame_energy(self, lo: int, hi: int) -> np.ndarray:
        """(hi - lo,) input energy per mel frame, in sums of squares of model-rate samples
        (a frame holds ``hop`` of those, however many input samples it spans)."""
        return self._power[lo:hi] / np.maximum(self._count[lo:hi], 1) * self.cfg.hop_length

    def close(self) -> None:
        self._done = True
        if self._file is not None:
            self._file.close()
            self._file = None


class ArrayAudio:
    """(frames, channels) float32 samples in memory, read as ``TrackReader`` reads a file, so
    a clip converted in memory takes the same code as a file."""

    def __init__(self, data: np.ndarray):
        self.data, self.at = data, 0

    def read(self, frames: int, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        out = self.data[self.at : self.at + frames]
        self.at += len(out)
        return out

    def close(self) -> None:
        pass


@dataclass
class Segment:
    """One piece of a track: its mel, the windows to translate, and where its output goes."""

    index: int
    last: bool
    mel: torch.Tensor  # (channels, n_mels, frames): the frames its translator windows read
    translate: chunking.Plan  # sources from the mel slice, targets from ``translated_start``
    vocode: chunking.Plan  # sources from ``translated_start``, targets from ``out_start``
    out_start: int  # first frame this segment's vocoder windows reach
    emit: int  # frames from ``out_start`` that are final once this segment is added
    seconds: float  # share of the track's duration, for progress
    energy: np.ndarray | None = None  # (emit,) the input's energy per emitted frame (loudness.Leveller)
    payload: object = None


class SegmentPlanner:
    """Cuts a track into segments of ``windows_per_segment`` vocoder windows."""

    def __init__(self, reader: TrackReader, translate: ChunkConfig, vocode: ChunkConfig, windows_per_segment: int):
        self.reader = reader
        self.t_plan = chunking.plan_windows(reader.frames, translate)
        self.v_plan = chunking.plan_windows(reader.frames, vocode)
        self.per = max(1, windows_per_segment)
        self.count = -(-len(self.v_plan.windows) // self.per)
        self._t_ends = [w.target_start + w.keep_length for w in self.t_plan.windows]
        self._t_starts = [w.target_start for w in self.t_plan.windows]
        self.next_index = 0

    def next_segment(self) -> Segment:
        """Decode what segment ``next_index`` needs and cut its mel (a decode thread's job)."""
        i, T = self.next_index, self.reader.frames
        vw = self.v_plan.windows
        k0, k1 = i * self.per, min((i + 1) * self.per, len(vw))
        last = k1 == len(vw)
        # Translated frames the vocoder windows read, then the translator windows that make them.
        u, v = vw[k0].source_start, min(vw[k1 - 1].source_start + self.v_plan.window_length, T)
        j0, j1 = bisect_right(self._t_ends, u), bisect_left(self._t_starts, v)
        tw = self.t_plan.windows
        p, q = tw[j0].source_start, min(max(w.source_start for w in tw[j0:j1]) + self.t_plan.window_length, T)
        mel = self._mel(p, q)
        translated_start = tw[j0].target_start
        out_start = vw[k0].target_start
        end = T if last else vw[k1].target_start
        self.next_index += 1
        return Segment(
            index=i,
            last=last,
            mel=mel,
            translate=chunking.subplan(self.t_plan, j0, j1, p, translated_start),
            vocode=chunking.subplan(self.v_plan, k0, k1, translated_start, out_start),
            out_start=out_start,
            emit=end - out_start,
            seconds=self.reader.info.duration * (end - out_start) / T,
            energy=self.reader.frame_energy(out_start, end),  # decoded already: _mel read past ``end``
        )

    def _mel(self, p: int, q: int) -> torch.Tensor:
        """Log-mel frames p..q-1: the samples they cover, with the whole-file reflect padding
        only where the slice meets the ends of the track."""
        cfg, total = self.reader.cfg, self.reader.frames * self.reader.cfg.hop_length
        pad = melmod.edge_pad(cfg)
        lo, hi = p * cfg.hop_length - pad, q * cfg.hop_length + pad
        x = self.reader.samples(max(lo, 0), min(hi, total))
        if lo < 0 or hi > total:
            x = F.pad(x[:, None], (max(0, -lo), max(0, hi - total)), mode="reflect")[:, 0]
        # A few seconds of frames at a time: the STFT of a whole segment would briefly take
        # tens of MB (complex spectrum, magnitudes, copies), more than everything else here.
        step, hop = MEL_CHUNK_FRAMES, cfg.hop_length
        return torch.cat(
            [
                melmod.log_mel_padded(x[:, f * hop : (f + step - 1) * hop + cfg.n_fft], cfg)
                for f in range(0, q - p, step)
            ],
            dim=-1,
        )


class TrackWriter:
    """Assembles a track's output as its segments arrive: adds the cross-fade sums carried
    over a segment border, resamples to the output rate, and hands the samples to ``sink``
    (a ``FileSink`` or an ``ArraySink``). Any failure or ``abort`` leaves no output."""

    def __init__(self, path: Path, info: AudioInfo, rate: int, cfg: MelConfig, length: int, sink: FileSink | ArraySink,
                 level: bool = True):  # fmt: skip
        self.path, self.info, self.rate, self.sink = path, info, rate, sink
        self.leveller = Leveller(cfg.hop_length) if level else None
        self.hop = cfg.hop_length
        self.length = length  # model-rate samples to emit in all
        self.frames = max(1, round(info.frames * rate / info.sample_rate))  # output samples, exactly
        self._resampler = StreamResampler(cfg.sample_rate, rate)
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

    def _write(self, wave: torch.Tensor) -> None:
        wave = wave[..., : self.frames - self._written]
        if wave.shape[-1] == 0:
            return
        if wave.shape[0] != self.info.channels:
            wave = wave.expand(self.info.channels, -1)
        data = soft_limit(wave).T.contiguous().numpy()
        try:
            self.sink.write(data)
        except Exception as exc:
            raise AudioError(f"{self.path}: cannot write output: {write_reason(exc, self.path.parent)}") from None
        self._written += data.shape[0]

    def _finish(self) -> None:
        if self._written < self.frames:  # the model-rate audio came out a sample or two short
            self._write(torch.zeros(1, self.frames - self._written))
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
