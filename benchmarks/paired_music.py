"""Real multi-track music for `benchmarks/paired.py`: pieces of music21's bundled corpus
(string quartets, madrigals, chorales, a trio sonata, a rag), each part rendered twice with
fluidsynth and a GM soundfont, once with the source palette and once with the target's.

The scores carry what users' music has and generated MIDI lacks: several instruments at
once, rests, dynamics (MIDI velocities from the score's markings), tempo changes between
and within pieces. Both renderings share every note and onset, so their log-mels align.

Two pairs of palettes:
- ``piano-guitar``: every part as piano (GM 0), and every part as distortion guitar (GM 30);
- ``band-rock``: a mixed band (flute, clarinet, piano, acoustic bass on the lowest part, a
  standard kit), and the same parts as rock (distortion and overdriven guitars, electric
  bass, the power kit). The drum part is added on the score's beats: kick on beat one,
  snare on the others, hi-hat on every beat, identical on both sides.

Needs `pip install music21` (its corpus; licences in music21/corpus/license.txt: for
research use, nothing of it is shipped) and Debian's fluidsynth and fluid-soundfont-gm.
Training and held-out pieces are different works.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import paired_data

# Held out: whole works (and a composer, Haydn) that training never hears.
TRAIN = [
    *(f"beethoven/opus18no1/movement{i}" for i in (1, 2, 3, 4)),
    *(f"mozart/k80/movement{i}" for i in (1, 2, 3, 4)),
    *(f"mozart/k458/movement{i}" for i in (3, 4)),
    "corelli/opus3no1/1grave",
    *(f"monteverdi/madrigal.3.{i}" for i in (1, 2, 3, 4, 5, 6, 7, 8)),
    "bach/bwv1.6", "bach/bwv10.7", "bach/bwv101.7", "bach/bwv102.7", "bach/bwv103.6", "bach/bwv11.6",
    "bach/bwv110.7", "bach/bwv111.6",
    "joplin/maple_leaf_rag",
]  # fmt: skip
TEST = [
    *(f"haydn/opus74no1/movement{i}" for i in (1, 2, 3, 4)),
    *(f"monteverdi/madrigal.3.{i}" for i in (10, 11, 12)),
    "bach/bwv104.6", "bach/bwv108.6", "mozart/k155/movement1", "schubert/Lindenbaum",
]  # fmt: skip


@dataclass(frozen=True)
class Palette:
    programs: tuple[int, ...]  # GM programs given to the parts in turn
    bass: int | None = None  # GM program of the lowest part, if it gets its own
    kit: int | None = None  # GM drum kit (bank 128) of an added drum part; None: no drums


PAIRS = {
    "piano-guitar": (Palette((0,)), Palette((30,))),
    "band-rock": (Palette((73, 71, 0), bass=32, kit=0), Palette((30, 29, 30), bass=33, kit=16)),
}
KICK, SNARE, HIHAT = 36, 38, 42


def stem(name: str) -> str:
    """A corpus name as a file name: ``bach/bwv1.6`` -> ``bach__bwv1.6``."""
    return name.replace("/", "__")


def score_midi(name: str, cache: Path) -> Path | None:
    """The corpus piece ``name`` as a MIDI file (music21's own export), cached; None (and a
    line saying why) for a score music21 cannot export."""
    out = cache / (stem(name) + ".mid")
    if not out.exists():
        try:
            from music21 import corpus
        except ImportError:
            raise SystemExit("the real-music pairs need music21's corpus: pip install music21") from None
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            corpus.parse(name).write("midi", fp=str(out.with_suffix(".part")))
        except Exception as exc:  # music21 cannot export some scores (e.g. badly formed repeats)
            print(f"{name}: skipped, music21 cannot export it ({type(exc).__name__}: {exc})", flush=True)
            return None
        out.with_suffix(".part").rename(out)
    return out


def arrange(midi: Path, palette: Palette, seconds: float):
    """The first ``seconds`` of ``midi`` with its parts given ``palette``'s programs (and a
    drum part), as a pretty_midi object."""
    import pretty_midi

    pretty_midi.pretty_midi.MAX_TICK = 10**10  # music21 writes at a fine tick resolution
    pm = pretty_midi.PrettyMIDI(str(midi))
    parts = [i for i in pm.instruments if i.notes and not i.is_drum]
    for inst in pm.instruments:
        # A note cut to nothing would be written with its note-off before its note-on: a
        # note that never ends, and fluidsynth renders forever.
        inst.notes = [n for n in inst.notes if n.start < seconds - 0.05]
        for n in inst.notes:
            n.end = min(n.end, seconds)
        inst.notes = [n for n in inst.notes if n.end - n.start >= 0.01]  # grace notes of no length, too
    lowest = min(parts, key=lambda i: np.mean([n.pitch for n in i.notes]) if i.notes else 128)
    for k, inst in enumerate(parts):
        inst.program = (
            palette.bass
            if (inst is lowest and palette.bass is not None)
            else palette.programs[k % len(palette.programs)]
        )
    if palette.kit is not None:
        drums = pretty_midi.Instrument(program=palette.kit, is_drum=True, name="drums")
        downbeats = set(np.round(pm.get_downbeats(), 4))
        for beat in pm.get_beats():
            if beat >= seconds - 0.1:
                break
            hit = KICK if round(beat, 4) in downbeats else SNARE
            drums.notes += [pretty_midi.Note(90, hit, beat, beat + 0.1), pretty_midi.Note(70, HIHAT, beat, beat + 0.05)]
        pm.instruments.append(drums)
    return pm


def build(
    folder: Path, names: list[str], pair: str, seconds: float, cache: Path, sample_rate: int = 22050
) -> list[str]:
    """``folder/source/NAME.wav`` and ``folder/target/NAME.wav`` for each corpus piece, the
    first ``seconds`` of it; returns the file names. Existing renderings are kept."""
    soundfont = paired_data.find_soundfont()
    files = []
    for name in names:
        midi = score_midi(name, cache)
        if midi is None:
            continue
        file = stem(name) + ".wav"
        for side, palette in zip(("source", "target"), PAIRS[pair]):
            out = folder / side / file
            if not out.exists():
                out.parent.mkdir(parents=True, exist_ok=True)
                arranged = cache / f"{pair}-{side}-{file}.mid"
                arrange(midi, palette, seconds).write(str(arranged))
                paired_data.render(arranged.read_bytes(), soundfont, sample_rate, out, seconds)
        files.append(file)
    return files
