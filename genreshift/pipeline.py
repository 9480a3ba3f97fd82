"""Convert tracks: load -> resample -> mel -> split -> translate -> stitch -> split -> vocode
-> stitch -> resample -> write, with windows of many tracks batched together.

``Converter`` is the Python API behind ``genreshift convert``::

    from genreshift.pipeline import Converter, ConvertOptions
    results = Converter(ConvertOptions(genre="rock")).convert([Path("my-album")])
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import audio, chunking, mel as melmod
from .audio import AudioError, AudioInfo, Track
from .batching import BatchQueue, Job
from .config import ChunkConfig
from .device import resolve_device
from .models import check_genre, load_translator, load_vocoder

VOCODER_CHUNK_FRAMES = 256
VOCODER_OVERLAP_FRAMES = 4


@dataclass(frozen=True)
class ConvertOptions:
    genre: str | None = None
    model: str | None = None  # a translator checkpoint path; overrides the genre's model
    vocoder: str = "auto"
    output: Path | None = None  # default: converted/<genre>
    device: str = "auto"
    batch_size: int = 16
    chunk_frames: int = 128
    overlap: int = 32
    stereo: bool = False  # convert each channel on its own instead of their mean
    sample_rate: int | None = None  # default: the input's
    format: str | None = None  # wav | flac | ogg; default: the input's container
    skip_existing: bool = False
    decode_workers: int = 2


@dataclass
class TrackResult:
    source: Path
    output: Path | None
    duration: float  # seconds of audio
    seconds: float = 0.0  # wall time spent on it
    status: str = "planned"  # planned | converted | skipped | failed
    message: str = ""


@dataclass
class PlannedTrack:
    track: Track
    info: AudioInfo
    output: Path
    container: str
    subtype: str | None
    out_rate: int
    result: TrackResult


@dataclass
class _Work:
    """A track on its way through the models."""

    planned: PlannedTrack
    started: float
    length: int  # samples at the model rate, before padding
    channels: int = 1
    translate_plan: chunking.Plan | None = None
    vocode_plan: chunking.Plan | None = None
    silent: bool = False


ProgressFn = Callable[[float, "TrackResult | None"], None]


class Converter:
    """Loads the models once, then converts any number of paths."""

    def __init__(self, options: ConvertOptions, progress: ProgressFn | None = None):
        self.options = options
        self.progress = progress or (lambda seconds, result: None)
        self.device = resolve_device(options.device)
        # Check the genre now, but fetch weights only when there is something to convert.
        self.genre = check_genre(options.genre, options.model)
        self.chunk = ChunkConfig(options.chunk_frames, options.overlap)
        self.output_root = options.output or Path("converted") / self.genre
        self._translator = None
        self._vocoder = None

    def load_models(self) -> None:
        if self._translator is None:
            info = load_translator(self.options.genre, self.options.model)
            self.mel_cfg = info.checkpoint.mel
            self._vocoder = load_vocoder(self.options.vocoder, info, self.device)
            self._translator = info.checkpoint.build(self.device)

    @property
    def vocoder_name(self) -> str:
        self.load_models()
        return self._vocoder.name

    # -- planning -------------------------------------------------------------------------

    def plan(self, paths: list[Path]) -> tuple[list[PlannedTrack], list[TrackResult], list[str]]:
        """Find tracks and decide each output; returns (to convert, failed or skipped, problems)."""
        tracks, problems = audio.find_tracks(paths, exclude=self.output_root)
        inputs = {t.path.resolve() for t in tracks}
        claimed: dict[Path, Path] = {}
        todo, done = [], []
        for track in tracks:
            try:
                planned = self._plan_one(track, inputs, claimed)
            except AudioError as exc:
                done.append(TrackResult(track.path, None, 0.0, status="failed", message=str(exc)))
                continue
            if self.options.skip_existing and planned.output.exists():
                planned.result.status, planned.result.message = "skipped", "output exists"
                done.append(planned.result)
            else:
                todo.append(planned)
        return todo, done, problems

    def _plan_one(self, track: Track, inputs: set[Path], claimed: dict[Path, Path]) -> PlannedTrack:
        info = audio.probe(track.path)
        rate = self.options.sample_rate or info.sample_rate
        container, subtype, suffix = audio.output_format(info, self.options.format, track.path.suffix, rate)
        output = self.output_root / track.relative.with_suffix(suffix)
        key = output.resolve()
        if key in inputs:
            raise AudioError(f"{track.path}: output {output} would overwrite an input; choose another -o/--output")
        if key in claimed:
            raise AudioError(f"{track.path}: output {output} is already the output of {claimed[key]}")
        claimed[key] = track.path
        result = TrackResult(track.path, output, info.duration)
        return PlannedTrack(track, info, output, container, subtype, rate, result)

    # -- converting -----------------------------------------------------------------------

    def convert(self, paths: list[Path]) -> list[TrackResult]:
        todo, results, problems = self.plan(paths)
        for result in results:
            self.progress(0.0, result)
        if todo:
            self.load_models()
            results += self.convert_planned(todo)
        return results

    def convert_planned(self, todo: list[PlannedTrack]) -> list[TrackResult]:
        translate_q = BatchQueue(self._translator, self.options.batch_size, self.device)
        vocode_q = BatchQueue(self._vocoder.module, self.options.batch_size, self.device, self._vocoded)
        results: list[TrackResult] = []
        with ThreadPoolExecutor(max(1, self.options.decode_workers)) as pool:
            ahead = 2 * max(1, self.options.decode_workers)
            futures: list[tuple[PlannedTrack, Future]] = []
            writes: list[Future] = []
            for i, planned in enumerate(todo):
                while len(futures) < ahead and i + len(futures) < len(todo):
                    nxt = todo[i + len(futures)]
                    futures.append((nxt, pool.submit(self._prepare, nxt)))
                current, future = futures.pop(0)
                try:
                    work, mel = future.result()
                except AudioError as exc:
                    results.append(self._fail(current, str(exc)))
                    continue
                translate_q.add(Job(self._split_for_translator(work, mel), work))
                self._advance(translate_q, vocode_q, pool, writes, flush=False)
            self._advance(translate_q, vocode_q, pool, writes, flush=True)
            for w in writes:
                results.append(w.result())
        return results

    def _advance(self, translate_q, vocode_q, pool, writes, flush: bool) -> None:
        for job in translate_q.run(flush=flush):
            vocode_q.add(Job(self._split_for_vocoder(job), job.payload))
        for job in vocode_q.run(flush=flush):
            audio_out = self._stitch_vocoded(job)
            writes.append(pool.submit(self._finish, job.payload, audio_out))

    def _prepare(self, planned: PlannedTrack) -> tuple[_Work, torch.Tensor]:
        """Decode thread: load, mix down (or keep channels), resample, pad, log-mel."""
        started = time.perf_counter()
        wave, rate = audio.load(planned.track.path)
        if not self.options.stereo:
            wave = wave.mean(dim=0, keepdim=True)
        wave = audio.resample(wave, rate, self.mel_cfg.sample_rate)
        padded, length = melmod.pad_for_mel(wave, self.mel_cfg)
        work = _Work(planned, started, length, channels=wave.shape[0], silent=bool(wave.abs().max() == 0))
        return work, melmod.log_mel(padded, self.mel_cfg)

    def _split_for_translator(self, work: _Work, mel: torch.Tensor) -> torch.Tensor:
        work.translate_plan = chunking.plan_windows(mel.shape[-1], self.chunk)
        windows = chunking.split(mel, work.translate_plan)  # (N, C, n_mels, W)
        return windows.flatten(0, 1)

    def _split_for_vocoder(self, job: Job) -> torch.Tensor:
        work: _Work = job.payload
        plan = work.translate_plan
        out = job.result().unflatten(0, (len(plan.windows), work.channels))
        mel = chunking.stitch(out, plan)  # (C, n_mels, T), still on the model device
        cfg = ChunkConfig(VOCODER_CHUNK_FRAMES, VOCODER_OVERLAP_FRAMES, self._vocoder.context)
        work.vocode_plan = chunking.plan_windows(mel.shape[-1], cfg)
        return chunking.split(mel, work.vocode_plan).flatten(0, 1)

    def _vocoded(self, job: Job, n: int) -> None:
        """Progress: each vocoded window is a known share of the track's duration."""
        work: _Work = job.payload
        share = n / len(job.windows)
        self.progress(work.planned.result.duration * share, None)

    def _stitch_vocoded(self, job: Job) -> torch.Tensor:
        work: _Work = job.payload
        plan = work.vocode_plan
        out = job.result().unflatten(0, (len(plan.windows), work.channels))
        return chunking.stitch(out, plan, scale=self.mel_cfg.hop_length)[..., : work.length].cpu()

    def _finish(self, work: _Work, wave: torch.Tensor) -> TrackResult:
        """Writer thread: back to the output rate and channel count, then an atomic write."""
        planned = work.planned
        result = planned.result
        try:
            wave = audio.resample(wave, self.mel_cfg.sample_rate, planned.out_rate)
            frames = round(planned.info.frames * planned.out_rate / planned.info.sample_rate)
            frames = max(frames, 1)
            wave = torch.nn.functional.pad(wave, (0, max(0, frames - wave.shape[-1])))[..., :frames]
            if wave.shape[0] != planned.info.channels:
                wave = wave.expand(planned.info.channels, -1)
            audio.write_atomic(planned.output, wave, planned.out_rate, planned.container, planned.subtype)
        except AudioError as exc:
            return self._fail(planned, str(exc), work.started)
        result.status = "converted"
        result.message = "input is silent" if work.silent else ""
        result.seconds = time.perf_counter() - work.started
        self.progress(0.0, result)
        return result

    def _fail(self, planned: PlannedTrack, message: str, started: float | None = None) -> TrackResult:
        result = planned.result
        result.status, result.message = "failed", message
        if started is not None:
            result.seconds = time.perf_counter() - started
        self.progress(0.0, result)
        return result
