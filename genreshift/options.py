"""What a conversion is asked (``ConvertOptions``) and what it reports per track
(``TrackResult``): plain data shared by the pipeline, the CLI and the report."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

# --strength: 0 is the vocoder alone, 1 the translator as trained; above 1 exaggerates its
# change, and past about 1.5 the mel leaves what the vocoder was trained on.
MAX_STRENGTH = 1.5


MAX_BATCH = 4096


def batch_size_problem(batch_size: int | str) -> str | None:
    """Why ``batch_size`` cannot be used, or None: a whole number from 1 to MAX_BATCH, or "auto"."""
    if batch_size == "auto":
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        return f"batch size must be a whole number from 1 to {MAX_BATCH}, or auto; got {batch_size!r}"
    return None


def strength_problem(strength: float) -> str | None:
    """Why ``strength`` cannot be used, or None: one check for the API and the CLI."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        return f"strength must be a number from 0 to {MAX_STRENGTH}, got {strength!r}"
    if not (math.isfinite(strength) and 0 <= strength <= MAX_STRENGTH):
        return f"strength must be from 0 to {MAX_STRENGTH}, got {strength!r}"
    return None


@dataclass(frozen=True)
class ConvertOptions:
    genre: str | None = None
    model: str | None = None  # a translator checkpoint path; overrides the genre's model
    vocoder: str = "auto"
    output: Path | None = None  # default: converted/<genre>
    device: str = "auto"
    batch_size: int | str = 16  # windows per model call, or "auto": sized by the free GPU memory
    chunk_frames: int = 128
    overlap: int = 32
    stereo: bool = False  # convert each channel on its own instead of their mean
    sample_rate: int | None = None  # default: the input's
    format: str | None = None  # wav | flac | ogg; default: the input's container
    skip_existing: bool = False
    # Threads that decode (and cut mel) ahead of the models, and as many that encode and
    # write. None: 1 on a CPU, where they share the cores with the models; on a GPU the
    # CPU count minus one (``default_workers``).
    workers: int | None = None
    # Audio converted at a time (rounded to whole vocoder windows): memory is bounded by
    # this, not by the track's length; longer segments repeat fewer translator windows.
    segment_seconds: float = 30.0
    # Keep the output's loudness near the input's (loudness.Leveller); off: the models' own
    # level. None: on, except for a translator trained on pairs (finetune --paired), whose
    # level change is part of what the pairs taught (docs/benchmarks.md, "Paired finetune").
    level: bool | None = None
    # On a CPU, the fast vocoder's main layers in int8 (FastVocoder.use_int8): a few to 12%
    # faster at an unchanged quality (docs/benchmarks.md); off: float32 throughout.
    int8: bool = True
    # Convert only a share of the files: ((K, N), ...) is share K of N, then a share of that
    # (see shards.py). Every process given the same paths computes the same split.
    shards: tuple[tuple[int, int], ...] = ()
    # Convert only this many seconds of each track (preview.py), into NAME.preview.EXT: from
    # ``preview_start`` seconds in, or else from the track's loudest stretch.
    preview: float | None = None
    preview_start: float | None = None
    # How far the translator moves the mel: mel + strength * (G(mel) - mel); 0 is the
    # vocoder alone, up to MAX_STRENGTH.
    strength: float = 1.0

    def __post_init__(self) -> None:
        for problem in [strength_problem(self.strength), batch_size_problem(self.batch_size)]:
            if problem is not None:
                raise ValueError(problem)
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):  # fmt: skip
            raise ValueError(f"workers must be a whole number >= 1, got {self.workers!r}")
        if self.preview is not None and not (math.isfinite(self.preview) and self.preview > 0):
            raise ValueError(f"preview must be a finite number of seconds above 0, got {self.preview!r}")
        if self.preview_start is not None:
            if self.preview is None:
                raise ValueError("preview_start needs preview (the excerpt's length in seconds)")
            if not (math.isfinite(self.preview_start) and self.preview_start >= 0):
                raise ValueError(f"preview_start must be a finite number of seconds >= 0, got {self.preview_start!r}")


def default_workers(device_type: str, cpus: int, processes: int) -> int:
    """Decode and encode threads when ``--workers`` is not given: on a CPU the models need
    the cores, so one; on a GPU every CPU of this process's share (``processes`` share the
    machine's ``cpus``, as under torchrun) but the one that feeds the models."""
    if device_type == "cpu":
        return 1
    return max(1, cpus // max(1, processes) - 1)


@dataclass
class TrackResult:
    source: Path
    output: Path | None
    duration: float  # seconds of audio
    seconds: float = 0.0  # wall time spent on it
    status: str = "planned"  # planned | converted | skipped | failed
    message: str = ""
    correction_db: float | None = None  # gain the output needed to match the input's loudness
    gain_limited: bool = False  # ... and it needed more than the gain limit allowed somewhere
    gain_db: float | None = None  # the overall gain levelling applied (within the limits)
    excerpt: tuple[float, float] | None = None  # a preview's (first, last) second of the source
