"""Read and cut a track in pieces, so memory does not grow with its length (``writing.py``
puts the pieces back together).

A track is decoded in blocks, resampled block by block, and converted as a sequence of
*segments* of whole vocoder windows (about a minute of audio each). Every segment is cut
from the same window plans a whole-file pass would use (``chunking.subplan``), with the
audio, mel and translated mel its windows need on both sides, so each window sees exactly
the neighbourhood it would see in one pass. The vocoder windows that straddle a segment
border are not run twice: each segment hands the weighted sums over its last cross-fade to
the next (``writing.TrackWriter``), which adds its own. The result equals a whole-file pass up to
float rounding, at a cost of a few translator windows per border.
"""

from __future__ import annotations

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
from .audio import AudioError, AudioInfo
from .config import ChunkConfig, MelConfig
from .errors import short_reason
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
