"""Audio in and out: find tracks, decode with soundfile, resample, write atomically."""

from __future__ import annotations

import errno
import os
import stat
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import torch

from .atomic import replacing
from .errors import AudioError, short_reason, write_reason
from .limiter import limit
from .resampling import StreamResampler, resample, resampled_length  # noqa: F401 (audio.resample, ...)

# File endings libsndfile may decode; the real check is sf.info() on the file itself.
AUDIO_SUFFIXES = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
    ".au", ".caf", ".w64", ".rf64", ".snd",
}  # fmt: skip
# Output container per --format name.
FORMATS = {"wav": ("WAV", ".wav"), "flac": ("FLAC", ".flac"), "ogg": ("OGG", ".ogg")}


@dataclass(frozen=True)
class Track:
    path: Path  # the input file
    relative: Path  # where it sits below the folder it was found in (mirrored in the output)


def find_tracks(paths: list[Path], exclude: Path | None = None) -> tuple[list[Track], list[str]]:
    """Audio files under ``paths`` (files or folders, recursive), sorted, hidden ones skipped.

    Returns the tracks and one message for each path that gave nothing or could not be
    looked at: a symlink loop, a FIFO or device with an audio name, an unreadable folder.
    ``exclude`` is a folder never searched (the output folder, so a rerun does not convert
    its own output).
    """
    tracks: list[Track] = []
    problems: list[str] = []
    seen: set[Path] = set()
    skip = _resolved(exclude) if exclude else None
    for root in paths:
        if not os.path.lexists(root):
            problems.append(f"{root}: no such file or folder")
            continue
        if not root.is_dir():
            if root.suffix.lower() not in AUDIO_SUFFIXES and _file_problem(root) is None:
                problems.append(f"{root}: not an audio file name ({', '.join(sorted(AUDIO_SUFFIXES))})")
                continue
            found = [Track(root, Path(root.name))]
        else:
            before = len(problems)
            found = _walk(root, skip, problems)
            if not found and len(problems) == before:
                problems.append(f"{root}: no audio files found")
        for t in found:
            reason = _file_problem(t.path)
            key = _resolved(t.path)
            if reason is not None or key is None:
                problems.append(f"{t.path}: {reason or 'cannot resolve the path'}; skipped")
            elif key not in seen:
                seen.add(key)
                tracks.append(t)
    return tracks, problems


def _resolved(path: Path) -> Path | None:
    """``path.resolve()``, or None where it cannot be had (a symlink loop raises)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


def _file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file, or None. A FIFO or device would block or never
    end when opened, so only regular files (or links to one) pass."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        return exc.strerror or str(exc)
    if stat.S_ISREG(mode):
        return None
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "a device or socket"
    return f"not a regular file ({kind})"


def _walk(root: Path, skip: Path | None, problems: list[str]) -> list[Track]:
    out = []

    def unreadable(exc: OSError) -> None:  # os.walk would pass over such a folder in silence
        problems.append(f"{exc.filename}: cannot read folder ({exc.strerror or exc}); its files are not converted")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and (skip is None or _resolved(here / d) != skip)
        )
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_SUFFIXES:
                out.append(Track(here / name, (here / name).relative_to(root)))
    return out


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


# libsndfile's MP3 decoder reports a file it cannot parse as missing; callers have checked
# that the file exists (_file_problem), so that message would send the user looking for it.
_MISLEADING = "File does not exist or is not a regular file"


def decode_reason(exc: BaseException) -> str:
    """libsndfile's reason for refusing a file, in one line that does not mislead."""
    reason = short_reason(exc, last_line=True)
    if _MISLEADING in reason:
        return "Format not recognised."
    return reason


@contextmanager
def _quiet_decoder(path: Path) -> Iterator[None]:
    """Silence what the C decoder prints on the process's stderr while ``path`` is probed:
    libsndfile's MP3 decoder (mpg123) prints notes such as "Illegal Audio-MPEG-Header" for a
    file it cannot parse, which would land between genreshift's own lines; the error line
    says what matters. MP3 only, and only around the probe (planning, on the main thread)."""
    if path.suffix.lower() != ".mp3":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (an embedding host): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def probe(path: Path) -> AudioInfo:
    reason = _file_problem(path)  # opening a FIFO would wait forever for a writer
    if reason is not None:
        raise AudioError(f"{path}: {reason}")
    try:
        with _quiet_decoder(path):
            info = sf.info(str(path))
    except Exception as exc:
        raise AudioError(f"{path}: not a readable audio file ({decode_reason(exc)})") from None
    return AudioInfo(info.samplerate, info.channels, info.frames, info.format, info.subtype)


def load(path: Path) -> tuple[torch.Tensor, int]:
    """(channels, samples) float32 tensor and its sample rate; rejects empty or non-finite audio."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({decode_reason(exc)})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: contains no audio (0 samples)")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: contains NaN or infinite samples; not converted")
    return torch.from_numpy(np.ascontiguousarray(data.T)), rate


def frames_of(wave: np.ndarray | torch.Tensor) -> np.ndarray:
    """A clip given as (samples,) or (channels, samples), NumPy or torch -> (frames, channels)
    float32, as soundfile reads a file."""
    data = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    if data.ndim == 1:
        data = data[None]
    if data.ndim != 2 or data.shape[0] > data.shape[1] > 0:
        raise ValueError(
            f"audio must be (samples,) or (channels, samples), got shape {tuple(data.shape)}"
            " (for soundfile's (frames, channels), pass its transpose)"
        )
    return np.ascontiguousarray(data.T, dtype=np.float32)


def shaped_like(frames: np.ndarray, wave: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """(frames, channels) float32 back into the shape and kind (NumPy or torch) of ``wave``."""
    out = np.ascontiguousarray(frames.T)
    out = out[0] if wave.ndim == 1 else out
    return torch.from_numpy(out) if isinstance(wave, torch.Tensor) else out


# Highest rate each container's encoder takes. libsndfile's Vorbis encoder does not refuse
# higher rates: it crashes the process (segfault) from 200001 Hz up, so the rate is checked
# before any encoder is opened. FLAC's own limit (655350 Hz) ends in a clean error.
MAX_RATE = {"OGG": 200000, "FLAC": 655350}


def rate_problem(container: str, rate: int) -> str | None:
    """Why ``container`` cannot be written at ``rate``, or None."""
    top = MAX_RATE.get(container)
    if top is not None and rate > top:
        return f"{container} output is limited to {top} Hz, not {rate} Hz; choose --format wav or a lower --sample-rate"
    return None


@lru_cache(maxsize=64)
def _writable(container: str, subtype: str | None, rate: int) -> bool:
    if rate_problem(container, rate) is not None:
        return False
    if container not in sf.available_formats():
        return False
    if subtype is not None and not sf.check_format(container, subtype):
        return False
    if container == "OGG" and subtype == "OPUS":
        return rate in {8000, 12000, 16000, 24000, 48000}
    return True


def output_format(info: AudioInfo, requested: str | None, source_suffix: str, rate: int) -> tuple[str, str | None, str]:
    """(container, subtype, file ending) for an output: --format if given, else the input's
    own container where libsndfile can write it at ``rate``, else WAV."""
    if requested:
        container, suffix = FORMATS[requested]
        reason = rate_problem(container, rate)
        if reason is None and not _probe_write(container, None, rate):
            reason = f"{container} cannot be written at {rate} Hz by this libsndfile; choose another --format"
        if reason is not None:
            raise AudioError(reason)
        return container, None, suffix
    if info.format in {"WAV", "WAVEX", "FLAC", "OGG", "AIFF", "MP3", "CAF", "W64", "RF64", "AU"}:
        subtype = info.subtype if _writable(info.format, info.subtype, rate) else None
        if _writable(info.format, subtype, rate) and _probe_write(info.format, subtype, rate):
            return info.format, subtype, source_suffix
    return "WAV", None, ".wav"


@lru_cache(maxsize=64)
def _probe_write(container: str, subtype: str | None, rate: int) -> bool:
    """Some combinations pass check_format but fail to open (e.g. FLAC above 655 kHz):
    try to open a throwaway file once per combination."""
    import io

    try:
        with sf.SoundFile(io.BytesIO(), "w", rate, 1, subtype=subtype, format=container):
            pass
        return True
    except Exception:
        return False


def write_atomic(path: Path, audio: torch.Tensor, rate: int, container: str, subtype: str | None) -> None:
    """Write (channels, samples) audio to a temp file beside ``path``, then rename; peaks are
    limited to -0.3 dBFS (``limiter.limit``), so nothing is clipped."""
    data = limit(audio, rate).T.contiguous().numpy()
    try:
        with replacing(path) as tmp:
            sf.write(tmp, data, rate, subtype=subtype, format=container)
    except Exception as exc:
        raise AudioError(f"{path}: cannot write output: {write_reason(exc, path.parent)}") from None
