"""Which tracks a conversion writes where: find the audio under the paths, probe each
file, pick its output's path and format, and refuse an output that would overwrite an input
or another track's output, before any model runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import audio
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
        else:
            plan.todo.append(planned)
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
    key = output.resolve()
    if key in inputs:
        raise AudioError(f"{track.path}: output {output} would overwrite an input; choose another -o/--output")
    if key in claimed:
        raise AudioError(f"{track.path}: output {output} is already the output of {claimed[key]}")
    claimed[key] = track.path
    result = TrackResult(track.path, output, info.duration)
    return PlannedTrack(track, info, output, container, subtype, rate, result)
