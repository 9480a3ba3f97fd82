"""Convert tracks: load -> resample -> mel -> split -> translate -> stitch -> split -> vocode
-> stitch -> resample -> write, with windows of many tracks batched together.

``Converter`` is the Python API behind ``genreshift convert`` (see docs/api.md)::

    from genreshift import Converter, ConvertOptions
    results = Converter(ConvertOptions(genre="rock")).convert([Path("my-album")])
    out = Converter(ConvertOptions(genre="rock")).convert_audio(wave, 44100)  # in memory
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import atomic, audio, chunking, distrib, phase, pretrained
from .translator import at_strength
from .audio import AudioError, AudioInfo, Track
from .batching import BATCH_UNIT_FRAMES, BatchQueue, Job, auto_batch_size, in_parts, windows_per_batch
from .config import ChunkConfig, MelConfig
from .device import resolve_device
from .options import ConvertOptions, TrackResult, default_workers
from .planning import PlannedTrack, plan_tracks
from .streaming import ArrayAudio, Segment, SegmentPlanner, TrackReader
from .writing import ArraySink, FileSink, TrackWriter

VOCODER_OVERLAP_FRAMES = 4


def vocoder_windows(vocoder: nn.Module) -> ChunkConfig:
    """The windows a vocoder runs on: the length and the context its class asks for."""
    return ChunkConfig(vocoder.window_frames, VOCODER_OVERLAP_FRAMES, vocoder.context_frames)


@dataclass
class _Work:
    """A track on its way through the models: its reader, segment plan and writer."""

    planned: PlannedTrack
    started: float
    lane: ThreadPoolExecutor  # the writer thread of this track: its segments are written in order
    reader: TrackReader | None = None
    planner: SegmentPlanner | None = None
    writer: TrackWriter | None = None
    finished: bool = False  # converted or failed; its result is final
    credited: float = 0.0  # seconds of progress reported for it so far
    # An integrated-phase vocoder's state: (track frame, its state after that frame).
    phase_state: tuple[int, torch.Tensor] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # held while a segment decodes

    def release(self) -> None:
        """Let go of buffers and files once finished: a batch of thousands of short files
        must not keep every track's last segment alive."""
        with self.lock:
            if self.reader is not None:
                self.reader.close()
            if self.writer is not None:
                self.writer.abort()  # drops the temp file unless the output was completed
            self.reader = self.planner = self.writer = None


ProgressFn = Callable[[float, "TrackResult | None"], None]


@dataclass(frozen=True)
class _Models:
    translator: nn.Module
    vocoder: nn.Module
    mel: MelConfig
    paired: bool  # the translator was trained on pairs (finetune --paired)


class Converter:
    """Resolves its models at once, loads them on first use, then converts any number of
    paths (``convert``) or clips in memory (``convert_audio``).

    ``progress(seconds, result)`` is told of audio seconds vocoded and of each finished
    track (``result``; None otherwise). Raises ``pretrained.ModelError`` (``UnknownGenreError``
    for a usage error), ``device.DeviceError`` or ``registry.WeightsError`` when the options
    cannot work.
    """

    def __init__(self, options: ConvertOptions, progress: ProgressFn | None = None):
        self.options = options
        told = progress or (lambda seconds, result: None)
        reporting = threading.Lock()  # the main thread and every writer thread report

        def report(seconds: float, result: TrackResult | None) -> None:
            with reporting:
                told(seconds, result)

        self._progress = report
        self.device = distrib.local_device(resolve_device(options.device))  # under torchrun: this rank's GPU
        # Resolve the models now, but fetch weights only when there is something to convert.
        self._source = pretrained.resolve(options.genre, options.model, options.vocoder)
        self.chunk = ChunkConfig(options.chunk_frames, options.overlap)
        self.output_root = options.output or Path("converted") / self.genre
        self._models: _Models | None = None
        self._batch_size: int | None = None
        self._loading = threading.Lock()
        self.batch_files: tuple[list[Path], list[Path]] = ([], [])  # set by plan(): (inputs, outputs)

    @property
    def source(self) -> pretrained.Source:
        """Where the models come from: genre, translator, vocoder, and a fallback note."""
        return self._source

    @property
    def genre(self) -> str:
        return self._source.genre

    @property
    def translator(self) -> nn.Module:
        """The translator, (B, n_mels, T) -> (B, n_mels, T) log-mel; loaded on first use."""
        return self._loaded().translator

    @property
    def vocoder(self) -> nn.Module:
        """The vocoder, (B, n_mels, T) -> (B, T * hop); loaded on first use."""
        return self._loaded().vocoder

    @property
    def mel_config(self) -> MelConfig:
        """The models' log-mel settings; loads them on first use."""
        return self._loaded().mel

    @property
    def levels(self) -> bool:
        """Whether outputs are levelled to their input's loudness: ``options.level``, or when
        that is None, unless the translator was trained on pairs; loads the models."""
        if self.options.level is not None:
            return self.options.level
        return not self._loaded().paired

    @property
    def batch_size(self) -> int:
        """Windows per model call: ``options.batch_size``, or for "auto" sized by the free GPU
        memory (``batching.auto_batch_size``; on a CPU the default, 16); loads the models."""
        if self._batch_size is None:
            if self.options.batch_size != "auto":
                self._batch_size = self.options.batch_size
            else:
                self._batch_size = auto_batch_size(self.device, self._probes())
        return self._batch_size

    def _probes(self) -> list[tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, float]]:
        """One window of silence for the translator and one for the vocoder's net, each with
        the batch-size units one of its windows counts for (``windows_per_batch``)."""
        loaded = self._loaded()
        vocoder = loaded.vocoder
        net = vocoder.features if vocoder.carries_phase else vocoder
        silence = torch.full((1, loaded.mel.n_mels, 1), math.log10(loaded.mel.log_floor))
        probes = []
        vocode = vocoder_windows(vocoder)
        for model, cfg, units in [(loaded.translator, self.chunk, 1.0), (net, vocode, self._vocoder_units(vocoder))]:
            probes.append((model, silence.expand(1, -1, cfg.size + 2 * cfg.context), units))
        return probes

    @staticmethod
    def _vocoder_units(vocoder: nn.Module) -> float:
        """Batch-size units one vocoder window counts for: 4 for 1024-frame windows."""
        return max(1.0, vocoder.window_frames / BATCH_UNIT_FRAMES)

    @property
    def workers(self) -> int:
        """Decode threads, and as many writer threads: ``options.workers`` or ``default_workers``."""
        return self.options.workers or default_workers(
            self.device.type, distrib.usable_cpus(), distrib.local_world_size()
        )

    @property
    def sample_rate(self) -> int:
        """The rate the models work at (outputs keep their input's rate)."""
        return self.mel_config.sample_rate

    def load_models(self) -> None:
        """Fetch and load the models now (otherwise the first conversion does)."""
        self._loaded()

    def _loaded(self) -> _Models:
        with self._loading:
            if self._models is None:
                ckpt = pretrained.load_translator(self._source)
                vocoder = pretrained.load_vocoder(self._source, ckpt.mel, self.device, self.options.int8)
                translator = pretrained.build(ckpt, self.device, self._source.translator)
                self._models = _Models(translator, vocoder, ckpt.mel, bool(ckpt.meta.get("paired", False)))
            return self._models

    def plan(self, paths: list[Path]) -> tuple[list[PlannedTrack], list[TrackResult], list[str]]:
        """Find tracks and decide each output (``planning.plan_tracks``); returns (to convert,
        failed or skipped, problems). ``batch_files`` then holds every share's inputs and outputs."""
        plan = plan_tracks(paths, self.options, self.output_root)
        self.batch_files = (plan.inputs, plan.outputs)
        return plan.todo, plan.done, plan.problems

    # -- converting -----------------------------------------------------------------------

    def convert(self, paths: list[Path]) -> list[TrackResult]:
        todo, results, problems = self.plan(paths)
        for result in results:
            self._progress(0.0, result)
        self.remove_stale_temps()
        if todo:
            results += self.convert_planned(todo)
        return results

    def remove_stale_temps(self) -> list[Path]:
        """Delete temp files a killed run left in the output folder (never those of a run
        still writing there); returns them."""
        return atomic.remove_stale(self.output_root)

    def convert_audio(self, wave: np.ndarray | torch.Tensor, sample_rate: int) -> np.ndarray | torch.Tensor:
        """One clip in memory, (samples,) or (channels, samples), NumPy or torch -> the same
        shape and type at the same rate: what ``convert`` would write for it as a float file.
        Raises AudioError (empty, NaN or infinite samples)."""
        data = audio.frames_of(wave)
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
        name = Path("<audio>")
        info = AudioInfo(sample_rate, data.shape[1], data.shape[0], "RAW", "FLOAT")
        sink = ArraySink()
        planned = PlannedTrack(Track(name, name), info, name, "RAW", "FLOAT", sample_rate,
                               TrackResult(name, None, info.duration), lambda: ArrayAudio(data), sink)  # fmt: skip
        [result] = self.convert_planned([planned])
        if result.status != "converted":
            raise AudioError(result.message)
        return audio.shaped_like(sink.data, wave)

    def convert_planned(self, todo: list[PlannedTrack]) -> list[TrackResult]:
        """Convert planned tracks segment by segment; returns one result per track, in order."""
        loaded = self._loaded()
        translator = at_strength(loaded.translator, self.options.strength)
        batch_size = self.batch_size
        translate_q = BatchQueue(translator, batch_size, self.device)
        # An integrated-phase vocoder batches its net only; the phase is then carried through
        # each track's windows in order (_synthesize).
        net = loaded.vocoder.features if loaded.vocoder.carries_phase else loaded.vocoder
        # counted in 256-frame windows: a 1024-frame vocoder gets a quarter as many per call
        vocode_batch = windows_per_batch(batch_size, loaded.vocoder.window_frames)
        if self.device.type == "cpu" and vocode_batch > loaded.vocoder.cpu_batch:
            net = in_parts(net, loaded.vocoder.cpu_batch)
        vocode_q = BatchQueue(net, vocode_batch, self.device, self._vocoded)
        workers = self.workers
        decode = ThreadPoolExecutor(workers, thread_name_prefix="genreshift-decode")
        # One thread per lane, and each track keeps to one lane: its segments are written in
        # the order they were queued, while other lanes write other tracks.
        lanes = [ThreadPoolExecutor(1, thread_name_prefix=f"genreshift-write-{i}") for i in range(workers)]
        works = [_Work(p, time.perf_counter(), lanes[i % workers]) for i, p in enumerate(todo)]
        # Segments waiting to be written hold their audio: when the writers fall behind the
        # models, the models wait, so memory stays bounded by segments.
        writing = threading.BoundedSemaphore(2 * workers + 2)
        try:
            # Each open track has at most one segment decoding; the next tracks' first
            # segments decode while the models work on the current one (two ahead: short
            # files go through the models faster than one decode thread keeps up with).
            # Segments reach the models in the order of the tracks whatever the number of
            # workers, so the batches, and the outputs, are the same with any number.
            pending, active = deque(works), deque()
            while pending or active:
                while pending and len(active) < workers + 2:
                    work = pending.popleft()
                    active.append((work, decode.submit(self._next_segment, work)))
                work, future = active.popleft()
                try:
                    seg = future.result()
                except AudioError as exc:
                    work.lane.submit(self._abort, work, str(exc))
                    continue
                if not seg.last:
                    active.appendleft((work, decode.submit(self._next_segment, work)))
                translate_q.add(Job(self._split_for_translator(seg), seg))
                self._advance(translate_q, vocode_q, writing, flush=False)
            self._advance(translate_q, vocode_q, writing, flush=True)
        finally:
            decode.shutdown(wait=True, cancel_futures=True)
            for work in works:  # after an error or Ctrl-C: no temp file is left behind
                work.lane.submit(self._abort, work, f"{work.planned.track.path}: interrupted; not written")
            for lane in lanes:
                lane.shutdown(wait=True)
        return [w.planned.result for w in works]

    def _next_segment(self, work: _Work) -> Segment:
        """Decode thread: open the track on its first call, then decode and cut one segment."""
        with work.lock, torch.no_grad():
            if work.finished:
                raise AudioError(work.planned.result.message)
            if work.planner is None:
                planned, cfg = work.planned, self.mel_config
                work.started = time.perf_counter()
                work.reader = TrackReader(
                    planned.track.path, planned.info, cfg, not self.options.stereo, planned.open_audio
                )
                vocode = vocoder_windows(self.vocoder)
                frames = self.options.segment_seconds * cfg.sample_rate / cfg.hop_length
                work.planner = SegmentPlanner(
                    work.reader, self.chunk, vocode, round(frames / (vocode.size - vocode.overlap))
                )
                sink = planned.sink or FileSink(planned.output, planned.out_rate, planned.info.channels,
                                                planned.container, planned.subtype)  # fmt: skip
                work.writer = TrackWriter(planned.output, planned.info, planned.out_rate, cfg, work.reader.length, sink,
                                          self.levels)  # fmt: skip
            seg = work.planner.next_segment()
            seg.payload = work
            return seg

    def _advance(self, translate_q: BatchQueue, vocode_q: BatchQueue, writing: threading.Semaphore,
                 flush: bool) -> None:  # fmt: skip
        for job in translate_q.run(flush=flush):
            vocode_q.add(Job(self._split_for_vocoder(job), job.payload))
        for job in vocode_q.run(flush=flush):
            seg: Segment = job.payload
            out = job.result().unflatten(0, (len(seg.vocode.windows), seg.mel.shape[0]))
            if self.vocoder.carries_phase:
                out = self._synthesize(seg, out, job.windows.unflatten(0, out.shape[:2]))
            summed, weights = chunking.accumulate(out, seg.vocode, scale=self.mel_config.hop_length)
            writing.acquire()
            seg.payload.lane.submit(self._write_then_release, writing, seg, summed.cpu(), weights.cpu())

    def _split_for_translator(self, seg: Segment) -> torch.Tensor:
        return chunking.split(seg.mel, seg.translate).flatten(0, 1)  # (N * C, n_mels, W)

    def _split_for_vocoder(self, job: Job) -> torch.Tensor:
        seg: Segment = job.payload
        out = job.result().unflatten(0, (len(seg.translate.windows), seg.mel.shape[0]))
        mel = chunking.stitch(out, seg.translate)  # (C, n_mels, T), still on the model device
        return chunking.split(mel, seg.vocode).flatten(0, 1)

    def _synthesize(self, seg: Segment, features: torch.Tensor, mels: torch.Tensor) -> torch.Tensor:
        """Integrated phase: audio windows from the net's (N, C, K, L) features (and the
        windows' (N, C, n_mels, L) mels, for the refinement), window after
        window, each continuing the phase its predecessor reached (phase.py), so the cores
        match a whole-file pass.

        A window starts from the state its predecessor left ``vocoder.synthesis_lead`` frames
        before its core (the first frame whose iSTFT, or refinement, reaches the core), moved
        back to a multiple of ``phase.BLOCK``; earlier frames are silent in its output, which
        the cross-fade never uses.
        """
        work: _Work = seg.payload
        vocoder, hop, outs = self.vocoder, self.mel_config.hop_length, []
        with torch.no_grad():
            for w, feats, mel in zip(seg.vocode.windows, features, mels.to(features.device)):
                core = seg.out_start + w.target_start  # track frame of the core's start
                origin = core - w.keep_offset  # track frame of the window's first frame
                begin, state = 0, None
                if work.phase_state is not None:
                    frame, state = work.phase_state
                    begin = frame + 1 - origin
                # the frame before the one where the next window will start: on a multiple of
                # the scan's block, so every window adds up its frames as a whole-file pass does
                start = core + w.keep_length - seg.vocode.overlap - vocoder.synthesis_lead
                frame = start // phase.BLOCK * phase.BLOCK - 1
                audio, state = vocoder.synthesize(feats[..., begin:], mel[..., begin:], state, frame - origin - begin)
                outs.append(torch.nn.functional.pad(audio, (begin * hop, 0)))
                work.phase_state = (frame, state)
        return torch.stack(outs)

    def _vocoded(self, job: Job, n: int) -> None:
        """Progress: each vocoded window is a known share of its segment's duration."""
        work: _Work = job.payload.payload
        if work.finished:  # failed: _settle has counted all of it
            return
        seconds = job.payload.seconds * n / len(job.windows)
        work.credited += seconds
        self._progress(seconds, None)

    def _settle(self, work: _Work) -> None:
        """Report a finished track, with the rest of its seconds: the bar ends at the total,
        however much of a failed track was converted before it failed."""
        rest = max(0.0, work.planned.result.duration - work.credited)
        work.credited += rest
        self._progress(rest, work.planned.result)

    def _write_then_release(self, writing: threading.Semaphore, seg: Segment, summed: torch.Tensor,
                            weights: torch.Tensor) -> None:  # fmt: skip
        """Writer thread: ``_write``, then make room for the next segment, whatever happened."""
        try:
            self._write(seg, summed, weights)
        except Exception as exc:  # not the file's fault: still one line that names it, and the batch goes on
            self._abort(seg.payload, f"{seg.payload.planned.track.path}: not converted: {type(exc).__name__}: {exc}")
        finally:
            writing.release()

    def _write(self, seg: Segment, summed: torch.Tensor, weights: torch.Tensor) -> None:
        """Writer thread: append a segment to its track's output; finish the track after its last."""
        work: _Work = seg.payload
        if work.finished:  # failed earlier: its other segments are dropped
            return
        try:
            with torch.no_grad():
                done = work.writer.add(seg, summed, weights)
        except AudioError as exc:
            self._abort(work, str(exc))
            return
        if done:
            result = work.planned.result
            result.status = "converted"
            if work.reader.peak == 0:  # after any note planning left (a preview's excerpt)
                result.message = "; ".join(filter(None, [result.message, "input is silent"]))
            result.seconds = time.perf_counter() - work.started
            if work.writer.leveller is not None:
                result.correction_db = work.writer.leveller.correction_db
                result.gain_limited = work.writer.leveller.limited
                result.gain_db = work.writer.leveller.gain_db
            work.finished = True
            work.release()
            self._settle(work)

    def _abort(self, work: _Work, message: str) -> None:
        """Writer thread: drop a track's temp file and report it failed (once)."""
        if not work.finished:
            work.finished = True
            result = work.planned.result
            result.status, result.message = "failed", message
            result.seconds = time.perf_counter() - work.started
            self._settle(work)
        work.release()


def convert_audio(wave: np.ndarray | torch.Tensor, sample_rate: int, genre: str | None = None, *,
                  model: str | None = None, vocoder: str = "auto", device: str = "auto", stereo: bool = False,
                  batch_size: int = 16, strength: float = 1.0) -> np.ndarray | torch.Tensor:  # fmt: skip
    """Convert one clip in memory to ``genre``: (samples,) or (channels, samples), NumPy or
    torch -> the same shape and type at the same rate. ``strength`` scales the translator's
    change (0: vocoder only; ``ConvertOptions.strength``). Loads the models on every call;
    for many clips, keep a ``Converter`` and call its ``convert_audio``."""
    options = ConvertOptions(genre=genre, model=model, vocoder=vocoder, device=device, stereo=stereo,
                             batch_size=batch_size, strength=strength)  # fmt: skip
    return Converter(options).convert_audio(wave, sample_rate)
