"""Which tracks a conversion writes where: find the audio under the paths, probe each
file, pick its output's path and format, and refuse an output that would overwrite an input
or another track's output, before any model runs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from . import audio, preview
from .audio import AudioError, AudioInfo, Track
from .options import ConvertOptions, TrackResult
from .shards import take_share
from .writing import ArraySink


@dataclass
class PlannedTrack:
    track: Track
    info: AudioInfo
    output: Path
    container: str
    subtype: str | None
    out_rate: int
    result: TrackResult
    open_audio: Callable[[], Any] | None = None  # a clip in memory (default: open the file)
    sink: ArraySink | None = None  # where a clip in memory goes (default: the output file)
    excerpt: preview.Excerpt | None = None  # a preview's stretch of the input (``info`` then has its length)

    def describe(self) -> str:
        """``input -> output``, and a preview's excerpt (the --dry-run line)."""
        line = f"{self.track.path} -> {self.output}"
        return line + (f" ({self.excerpt.describe()})" if self.excerpt else "")


@dataclass
class Plan:
    todo: list[PlannedTrack]  # to convert
    done: list[TrackResult]  # failed or skipped already
    problems: list[str]  # paths that named no audio
    inputs: list[Path]  # every share's inputs and outputs, which --report may overwrite in no share
    outputs: list[Path]


def _duration(planned: PlannedTrack | TrackResult) -> float:
    return planned.duration if isinstance(planned, TrackResult) else planned.result.duration


def plan_tracks(paths: list[Path], options: ConvertOptions, output_root: Path) -> Plan:
    """Find tracks and decide each output.

    With ``options.shards``, only this share's tracks: all are planned first, so an output
    clash is found whichever share holds the other file, and the split does not depend on
    which outputs exist yet (a resumed share is the same share)."""
    tracks, problems = audio.find_tracks(paths, exclude=output_root)
    inputs = {t.path.resolve() for t in tracks}
    claimed: dict[Path, Path] = {}
    every: list[PlannedTrack | TrackResult] = []
    for track in tracks:
        try:
            every.append(_plan_one(track, options, output_root, inputs, claimed))
        except AudioError as exc:
            every.append(TrackResult(track.path, None, 0.0, status="failed", message=str(exc)))
    plan = Plan([], [], problems, [t.path for t in tracks], [x.output for x in every if x.output is not None])
    for planned in take_share(every, _duration, options.shards):
        if isinstance(planned, TrackResult):
            plan.done.append(planned)
        elif options.skip_existing and planned.output.exists():
            planned.result.status, planned.result.message = "skipped", "output exists"
            plan.done.append(planned.result)
        elif options.preview is None:
            plan.todo.append(planned)
        else:  # the loudest stretch is looked for in this share's files only
            try:
                plan.todo.append(_cut_excerpt(planned, options))
            except AudioError as exc:
                planned.result.status, planned.result.message = "failed", str(exc)
                plan.done.append(planned.result)
    return plan


def _plan_one(track: Track, options: ConvertOptions, output_root: Path, inputs: set[Path],
              claimed: dict[Path, Path]) -> PlannedTrack:  # fmt: skip
    info = audio.probe(track.path)
    rate = options.sample_rate or info.sample_rate
    try:
        container, subtype, suffix = audio.output_format(info, options.format, track.path.suffix, rate)
    except AudioError as exc:
        raise AudioError(f"{track.path}: {exc}") from None
    output = output_root / track.relative.with_suffix(suffix)
    duration = info.duration
    if options.preview is not None:
        output = preview.preview_path(output)
        duration = preview.excerpt_frames(info, options.preview) / info.sample_rate
    key = output.resolve()
    if key in inputs:
        raise AudioError(f"{track.path}: output {output} would overwrite an input; choose another -o/--output")
    if key in claimed:
        raise AudioError(f"{track.path}: output {output} is already the output of {claimed[key]}")
    claimed[key] = track.path
    result = TrackResult(track.path, output, duration)
    return PlannedTrack(track, info, output, container, subtype, rate, result)


def _cut_excerpt(planned: PlannedTrack, options: ConvertOptions) -> PlannedTrack:
    """Make a planned track the preview of its excerpt: the conversion reads only that stretch
    and sees a track of its length. Raises AudioError when the file cannot be scanned."""
    path, info = planned.track.path, planned.info
    excerpt = preview.choose_excerpt(path, info, options.preview, options.preview_start)
    planned.excerpt, planned.info = excerpt, replace(info, frames=excerpt.frames)
    planned.open_audio = lambda: preview.ExcerptAudio(path, excerpt.start)
    planned.result.excerpt, planned.result.message = excerpt.seconds, excerpt.note
    return planned
