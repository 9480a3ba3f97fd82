"""Paired music for `benchmarks/paired.py`: the same generated pieces played by two instruments.

Pieces are written as Standard MIDI Files by this script (random key, tempo, chord
progression, bass line and melody), then rendered twice with fluidsynth and a General MIDI
soundfont: once with the source program, once with the target program. The two renderings
of a piece share every note onset, so their log-mels are aligned frame by frame.

Needs Debian's `fluidsynth` and a GM soundfont (`fluid-soundfont-gm`):
    apt-get install fluidsynth fluid-soundfont-gm
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
TICKS = 480  # per quarter note
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Scale degrees (0-based) of common progressions; each chord lasts one bar.
PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 4), (5, 3, 0, 4), (0, 3, 0, 4), (0, 4, 3, 4))


def _varlen(n: int) -> bytes:
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.append((n & 0x7F) | 0x80)
    return bytes(reversed(out))


def midi_file(events: list[tuple[int, int, int, int]], program: int, bpm: float) -> bytes:
    """A type-0 SMF: ``events`` are (tick, kind, note, velocity), kind 1 = on, 0 = off."""
    body = bytearray()
    body += _varlen(0) + b"\xff\x51\x03" + int(60_000_000 / bpm).to_bytes(3, "big")
    body += _varlen(0) + bytes([0xC0, program])
    now = 0
    for tick, kind, note, vel in sorted(events, key=lambda e: (e[0], e[1])):  # offs before ons
        body += _varlen(tick - now) + bytes([0x90 if kind else 0x80, note, vel])
        now = tick
    body += _varlen(TICKS) + b"\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS) + b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def _note(events: list, start: int, length: int, note: int, vel: int) -> None:
    events.append((start, 1, note, vel))
    events.append((start + length, 0, note, 0))


def random_piece(rng: random.Random, bars: int) -> tuple[list[tuple[int, int, int, int]], float]:
    """Notes of one piece and its tempo: block chords, a bass line and a melody in one key."""
    scale = MAJOR if rng.random() < 0.6 else MINOR
    tonic = 48 + rng.randrange(12)
    bpm = rng.uniform(80, 140)
    bar = 4 * TICKS
    events: list[tuple[int, int, int, int]] = []
    progression = rng.choice(PROGRESSIONS)
    melody = tonic + 12 + scale[rng.randrange(7)]
    for b in range(bars):
        degree = progression[b % len(progression)]
        chord = [tonic + scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        rhythm = rng.choice(((0, 4), (0, 2, 2), (0, 1, 1, 1, 1)))
        t = b * bar
        for beats in rhythm[1:]:  # chords on the rhythm's beats
            for n in chord:
                _note(events, t, beats * TICKS - 20, n, rng.randint(55, 80))
            t += beats * TICKS
        _note(events, b * bar, bar // 2 - 20, chord[0] - 12, 85)
        _note(events, b * bar + bar // 2, bar // 2 - 20, chord[rng.choice((0, 2))] - 12, 80)
        t = b * bar
        while t < (b + 1) * bar:  # melody: a random walk on the scale, eighths to halves
            length = rng.choice((TICKS // 2, TICKS, TICKS, 2 * TICKS))
            length = min(length, (b + 1) * bar - t)
            step = rng.choice((-2, -1, -1, 0, 1, 1, 2))
            pitch_class = (scale.index((melody - tonic) % 12) + step) % 7 if (melody - tonic) % 12 in scale else 0
            candidate = tonic + 12 * ((melody - tonic) // 12) + scale[pitch_class]
            melody = min(max(candidate, tonic + 7), tonic + 31)
            if rng.random() > 0.15:  # some rests
                _note(events, t, length - 10, melody, rng.randint(80, 105))
            t += length
    return events, bpm


def find_soundfont() -> Path:
    for path in SOUNDFONTS:
        if Path(path).is_file():
            return Path(path)
    raise SystemExit("no GM soundfont: apt-get install fluid-soundfont-gm")


def render(midi: bytes, soundfont: Path, sample_rate: int, out: Path, seconds: float | None = None) -> None:
    """Render with fluidsynth, then store mono audio (channels averaged), cut to its first
    ``seconds`` if given (no reverb tail past the notes)."""
    if shutil.which("fluidsynth") is None:
        raise SystemExit("fluidsynth is not installed: apt-get install fluidsynth")
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "piece.mid", Path(tmp) / "piece.wav"
        mid.write_bytes(midi)
        cmd = ["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(sample_rate), "-F", str(wav), str(soundfont), str(mid)]
        # A note that never ends makes fluidsynth render forever: give up rather than fill the disk.
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    if seconds is not None:
        audio = audio[: int(seconds * rate)]
    sf.write(out, audio.mean(axis=1), rate, subtype="PCM_16")


def build(folder: Path, pieces: int, bars: int, source_program: int, target_program: int, seed: int,
          sample_rate: int = 22050) -> list[str]:  # fmt: skip
    """Write ``folder/source/NAME.wav`` and ``folder/target/NAME.wav`` for each piece; returns
    the names. Deterministic for a seed; existing renderings are kept."""
    soundfont = find_soundfont()
    rng = random.Random(seed)
    names = []
    for i in range(pieces):
        events, bpm = random_piece(rng, bars)
        name = f"piece_{seed}_{i:03d}.wav"
        names.append(name)
        for side, program in (("source", source_program), ("target", target_program)):
            out = folder / side / name
            if not out.exists():
                out.parent.mkdir(parents=True, exist_ok=True)
                render(midi_file(events, program, bpm), soundfont, sample_rate, out)
    return names


def load(path: Path) -> np.ndarray:
    audio, _ = sf.read(path, dtype="float32")
    return audio
