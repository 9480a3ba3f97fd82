"""Training data: every track decoded once into a cache, then random fixed-length crops.

A track is cached as a ``.npy`` (a log-mel for the translator, the 22050 Hz mono waveform for
the vocoder) plus the loudness of each mel frame, keyed by the file's sha256 and the
settings, and memory-mapped on later runs. ``Crops`` draws crops that are mostly not silent,
from a random stream per rank, and holds a few out for validation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import audio
from .. import mel as melmod
from ..atomic import replacing
from ..audio import AudioError
from ..config import MelConfig
from ..errors import TrainingError
from .config import TrainConfig

CACHE_VERSION = 1  # part of every cache key: bump when the cached data changes meaning
PCM_SCALE = 32767  # waveforms are cached as 16-bit PCM (half the disk of float32); float32 ones load too
MEL_BLOCK = 4096  # frames per log-mel call, so an hour-long track never needs one huge STFT


@dataclass
class Clip:
    path: Path
    relative: Path
    data: np.ndarray  # (n_mels, T) float32 log-mel, or (T * hop,) int16 waveform
    loudness: np.ndarray  # (T,) RMS of each frame's hop of audio, dBFS

    @property
    def frames(self) -> int:
        return len(self.loudness)


def load_clips(folder: Path, kind: str, cfg: MelConfig, cache: Path, max_seconds: float | None,
               write: bool, say: Callable[[str], None]) -> list[Clip]:  # fmt: skip
    """Every decodable track under ``folder`` as a Clip (``kind`` is "mel" or "wave")."""
    tracks, problems = audio.find_tracks([folder])
    if not tracks:
        raise TrainingError(problems[0] if problems else f"{folder}: no audio files found")
    for problem in problems:  # a FIFO, a symlink loop, an unreadable subfolder: the rest still trains
        say(problem)
    settings = json.dumps({"v": CACHE_VERSION, "kind": kind, "mel": asdict(cfg), "max_s": max_seconds}, sort_keys=True)
    digest = hashlib.sha256(settings.encode()).hexdigest()[:12]
    clips, failed = [], []
    for track in tracks:
        try:
            clips.append(_cached(track, kind, cfg, cache, digest, max_seconds, write))
        except AudioError as exc:
            failed.append(str(exc))
    for message in failed:
        say(f"skipped {message}")
    if not clips:
        raise TrainingError(f"{folder}: no usable audio ({len(failed)} file(s) could not be decoded)")
    return clips


def _cached(track: audio.Track, kind: str, cfg: MelConfig, cache: Path, digest: str,
            max_seconds: float | None, write: bool) -> Clip:  # fmt: skip
    from ..registry import sha256

    stem = cache / f"{sha256(track.path)[:32]}-{digest}"
    data_path, loud_path = Path(f"{stem}.{kind}.npy"), Path(f"{stem}.db.npy")
    try:
        return Clip(track.path, track.relative, np.load(data_path, mmap_mode="r"), np.load(loud_path, mmap_mode="r"))
    except (OSError, ValueError):
        pass  # not cached yet (or a damaged cache file): compute it again
    data, loudness = _compute(track.path, kind, cfg, max_seconds)
    if write:
        _save_npy(data_path, data)
        _save_npy(loud_path, loudness)
    return Clip(track.path, track.relative, data, loudness)


def _compute(path: Path, kind: str, cfg: MelConfig, max_seconds: float | None) -> tuple[np.ndarray, np.ndarray]:
    wave, rate = audio.load(path)
    if max_seconds is not None:
        wave = wave[:, : max(1, int(max_seconds * rate))]
    wave = audio.resample(wave.mean(dim=0), rate, cfg.sample_rate)
    padded, _ = melmod.pad_for_mel(wave, cfg)
    frames = padded.shape[-1] // cfg.hop_length
    rms = padded.reshape(frames, cfg.hop_length).pow(2).mean(dim=1).sqrt()
    loudness = (20 * torch.log10(rms + 1e-10)).numpy().astype(np.float32)
    if kind == "mel":
        return _long_log_mel(padded, cfg).numpy().astype(np.float32), loudness
    return (padded.clamp(-1, 1) * PCM_SCALE).round().numpy().astype(np.int16), loudness


def _long_log_mel(wave: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """log_mel of a long signal in blocks; each block gets a few frames of context on both
    sides, which makes its kept frames identical to those of one whole-signal call."""
    frames, hop = wave.shape[-1] // cfg.hop_length, cfg.hop_length
    ctx = cfg.n_fft // hop + 1
    out = []
    for f0 in range(0, frames, MEL_BLOCK):
        f1 = min(frames, f0 + MEL_BLOCK)
        a, b = max(0, f0 - ctx), min(frames, f1 + ctx)
        seg = wave[a * hop : b * hop]
        if seg.shape[-1] < cfg.n_fft:
            seg = torch.nn.functional.pad(seg, (0, cfg.n_fft - seg.shape[-1]))
        out.append(melmod.log_mel(seg, cfg)[:, f0 - a : f1 - a])
    return torch.cat(out, dim=-1)


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Write beside the final name, then rename: a crash never leaves half a cache file."""
    try:
        with replacing(path, ".tmp") as tmp, open(tmp, "wb") as f:
            np.save(f, array)
    except OSError:
        pass  # an unwritable cache only costs time: the data is already in memory


class Crops:
    """Random crops of ``frames`` frames from ``clips``: crops with fewer than half their
    frames above ``silence_db`` are never drawn; ``val_count`` fixed crops, the same on every
    rank, are held out, and training crops never overlap them."""

    def __init__(self, clips: list[Clip], frames: int, scale: int, val_count: int, seed: int, rank: int,
                 silence_db: float, label: str, frame_seconds: float):  # fmt: skip
        self.clips, self.frames, self.scale = clips, frames, scale
        allowed = [np.asarray(c.loudness) > silence_db for c in clips]
        starts = self._starts(allowed, [np.zeros(c.frames, bool) for c in clips])
        if not len(starts):
            total = sum(c.frames for c in clips) * frame_seconds
            raise TrainingError(f"{label}: less than one training window ({frames * frame_seconds:.2f} s) of "
                                f"non-silent audio in {total:.2f} s of tracks; add more or longer tracks")  # fmt: skip
        # Hold out at most a quarter of the audio. The validation stream does not depend on the
        # rank, so every rank holds out the same crops.
        hold = min(val_count, sum(c.frames for c in clips) // (4 * frames))
        val_rng = torch.Generator().manual_seed(seed + 7919)
        self.val_starts = self._pick_val(starts, hold or val_count, val_rng)
        held = [np.zeros(c.frames, bool) for c in clips]
        if hold:
            for i, s in self.val_starts:
                held[i][s : s + frames] = True
        self.train = self._starts(allowed, held)
        self.overlapping = not hold or not len(self.train)  # too little audio to hold anything out
        if not len(self.train):
            self.train = starts
        self.rng = torch.Generator().manual_seed(seed * 1000 + rank)  # each rank its own crops

    def _starts(self, allowed: list[np.ndarray], held: list[np.ndarray]) -> np.ndarray:
        """(N, 2) array of (clip, start) pairs of every permitted crop."""
        out = []
        for i, (ok, no) in enumerate(zip(allowed, held)):
            if len(ok) < self.frames:
                continue
            good = np.concatenate([[0], np.cumsum(ok & ~no)])
            bad = np.concatenate([[0], np.cumsum(no)])
            w = self.frames
            fine = (good[w:] - good[:-w] >= w / 2) & (bad[w:] - bad[:-w] == 0)
            idx = np.nonzero(fine)[0]
            out.append(np.stack([np.full_like(idx, i), idx], axis=1))
        return np.concatenate(out) if out else np.zeros((0, 2), np.int64)

    def _pick_val(self, starts: np.ndarray, count: int, rng: torch.Generator) -> list[tuple[int, int]]:
        chosen: list[tuple[int, int]] = []
        for j in torch.randperm(len(starts), generator=rng).tolist():
            if len(chosen) >= count:
                break
            i, s = (int(v) for v in starts[j])
            if all(i != ci or abs(s - cs) >= self.frames for ci, cs in chosen):
                chosen.append((i, s))
        return chosen

    def _crop(self, i: int, s: int) -> torch.Tensor:
        a, b = s * self.scale, (s + self.frames) * self.scale
        x = np.asarray(self.clips[i].data[..., a:b])
        return torch.from_numpy(x.astype(np.float32) / PCM_SCALE if x.dtype == np.int16 else np.array(x, np.float32))

    def batch(self, n: int) -> torch.Tensor:
        pick = torch.randint(len(self.train), (n,), generator=self.rng).tolist()
        return torch.stack([self._crop(*(int(v) for v in self.train[j])) for j in pick])

    def val(self) -> torch.Tensor:
        return torch.stack([self._crop(i, s) for i, s in self.val_starts])


def pair_clips(source: list[Clip], target: list[Clip]) -> list[Clip]:
    """Source and target mels of tracks that match by relative path (suffix ignored), stacked
    along the mel axis and cut to the shorter one, so one crop gives an aligned pair."""
    by_path = {c.relative.with_suffix(""): c for c in target}
    pairs = []
    for a in source:
        b = by_path.get(a.relative.with_suffix(""))
        if b is not None:
            n = min(a.frames, b.frames)
            data = np.concatenate([np.asarray(a.data[:, :n]), np.asarray(b.data[:, :n])])
            pairs.append(Clip(a.path, a.relative, data, np.asarray(a.loudness[:n])))
    return pairs


def crops_from(folders: list[Path], kind: str, frames: int, cfg: MelConfig, tc: TrainConfig, seed: int, rank: int,
               cache: Path, write: bool, say: Callable[[str], None]) -> Crops:  # fmt: skip
    """Crops of ``frames`` mel frames from every track in ``folders``, with a summary line."""
    clips = [c for f in folders for c in load_clips(f, kind, cfg, cache, tc.max_seconds_per_track, write, say)]
    frame_s = cfg.hop_length / cfg.sample_rate
    label = ", ".join(str(f) for f in folders)
    scale = cfg.hop_length if kind == "wave" else 1
    crops = Crops(clips, frames, scale, tc.val_crops, seed, rank, tc.silence_db, label, frame_s)
    seconds = sum(c.frames for c in clips) * frame_s
    overlap = " (overlapping training data: too little audio to hold out)" if crops.overlapping else ""
    say(f"{label}: {len(clips)} track(s), {seconds:.1f} s; {len(crops.val_starts)} held-out crops{overlap}")
    return crops


def paired_crops(source: Crops, target: Crops, tc: TrainConfig, rank: int, frame_s: float,
                 say: Callable[[str], None]) -> Crops | None:  # fmt: skip
    """Aligned crops of tracks that match by relative path, or None (said why) if there are none."""
    matched = pair_clips(source.clips, target.clips)
    say(f"paired: {len(matched)} of {len(source.clips)} source track(s) matched a target track by relative path")
    if not matched:
        say("paired: no pairs, so no supervised L1 term; training unpaired")
        return None
    try:
        return Crops(
            matched, source.frames, 1, tc.val_crops, tc.seed + 2, rank, tc.silence_db, "paired tracks", frame_s
        )
    except TrainingError as exc:
        say(f"paired: {exc}; training unpaired")
        return None
