"""``convert --preview SECONDS``: convert one excerpt of each track, to listen before a long batch.

The excerpt starts where ``--preview-start`` says, or else where the track is loudest: a
streaming scan of its level (decoded in blocks, never whole) sums the energy of
SCAN_STEP_SECONDS blocks and picks the run of blocks, as long as the excerpt, with the most.
A track shorter than the excerpt is converted whole. The conversion then reads only the
excerpt (``ExcerptAudio``), so everything downstream (segments, levelling, writing, the
progress bar) sees a track of the excerpt's length.

Outputs get ``.preview`` before their ending (``song.preview.flac``): a full conversion
never takes one for its own output, and a preview run never overwrites a full one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import AudioError, AudioInfo
from .errors import short_reason

TAG = ".preview"  # before the output's ending
SCAN_STEP_SECONDS = 0.25  # the grid the loudest excerpt may start on
SCAN_READ_SECONDS = 10.0  # decoded at a time while scanning: bounds memory


def preview_path(output: Path) -> Path:
    """Where the preview of a track whose full output is ``output`` goes."""
    return output.with_name(output.stem + TAG + output.suffix)


def excerpt_frames(info: AudioInfo, seconds: float) -> int:
    """Input frames in an excerpt of ``seconds``: the whole track when it is shorter."""
    return max(1, min(info.frames, round(seconds * info.sample_rate)))


@dataclass(frozen=True)
class Excerpt:
    """Where a preview comes from: ``frames`` input frames from ``start``."""

    start: int
    frames: int
    rate: int
    note: str = ""  # what the user should know: converted whole, or not where asked

    @property
    def seconds(self) -> tuple[float, float]:
        """(first, last) second of the track the excerpt covers."""
        return self.start / self.rate, (self.start + self.frames) / self.rate

    def describe(self) -> str:
        first, last = self.seconds
        return f"excerpt {first:.1f}–{last:.1f} s" + (f"; {self.note}" if self.note else "")


def choose_excerpt(path: Path, info: AudioInfo, seconds: float, start: float | None = None) -> Excerpt:
    """The excerpt of ``seconds`` to convert: from ``start`` (seconds) if given, else the
    loudest stretch. A start too late for a whole excerpt is moved back so that the excerpt
    ends with the track (the batch goes on, and the note says so). Raises AudioError when
    the scan cannot decode the file."""
    rate, frames = info.sample_rate, excerpt_frames(info, seconds)
    if frames >= info.frames:
        return Excerpt(0, info.frames, rate, f"whole track: shorter than {seconds:g} s")
    if start is None:
        return Excerpt(loudest_start(path, info, frames), frames, rate)
    first = round(start * rate)
    if first + frames <= info.frames:
        return Excerpt(first, frames, rate)
    return Excerpt(info.frames - frames, frames, rate, f"start moved back: the track ends at {info.duration:.1f} s")


def loudest_start(path: Path, info: AudioInfo, frames: int) -> int:
    """The first input frame of the ``frames`` long stretch with the highest energy (RMS),
    on a grid of SCAN_STEP_SECONDS (0 for a silent track)."""
    step = max(1, min(frames, round(SCAN_STEP_SECONDS * info.sample_rate)))
    energy = block_energy(path, info, step)
    span = max(1, min(len(energy), round(frames / step)))  # blocks in one excerpt
    sums = np.convolve(energy, np.ones(span), mode="valid")  # energy of each run of ``span`` blocks
    best = int(np.argmax(sums)) if len(sums) else 0
    return min(best * step, info.frames - frames)


def block_energy(path: Path, info: AudioInfo, step: int) -> np.ndarray:
    """Sum over each block of ``step`` input frames of the channels' mean squared sample,
    decoded SCAN_READ_SECONDS at a time."""
    per_read = step * max(1, round(SCAN_READ_SECONDS * info.sample_rate / step))
    parts: list[np.ndarray] = []
    try:
        with sf.SoundFile(str(path)) as f:
            while True:
                data = f.read(per_read, dtype="float32", always_2d=True)
                if not len(data):
                    break
                if not np.isfinite(data).all():
                    raise AudioError(f"{path}: contains NaN or infinite samples; not converted")
                power = np.square(data, dtype=np.float64).mean(axis=1)
                power = np.pad(power, (0, -len(power) % step))
                parts.append(power.reshape(-1, step).sum(axis=1))
                if len(data) < per_read:
                    break
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({short_reason(exc, last_line=True)})") from None
    return np.concatenate(parts) if parts else np.zeros(0)


class ExcerptAudio:
    """A file read like an ``sf.SoundFile`` from frame ``start`` on (``TrackReader`` stops
    after the excerpt's frames, which the track's ``AudioInfo`` says)."""

    def __init__(self, path: Path, start: int):
        self._file = sf.SoundFile(str(path))
        try:
            self._file.seek(start)  # libsndfile seeks in every format it decodes (regular files only)
        except Exception:
            self._file.close()
            raise

    def read(self, frames: int, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        return self._file.read(frames, dtype=dtype, always_2d=always_2d)

    def close(self) -> None:
        self._file.close()
