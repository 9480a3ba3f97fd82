"""benchmarks/paired_music.py: how a real score's parts are given each palette (issue 21's
real-music paired benchmark). Needs pretty_midi (the `benchmark` extra); not music21 or
fluidsynth, which only the benchmark run itself uses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pretty_midi = pytest.importorskip("pretty_midi")
BENCH = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture
def paired_music():
    sys.path.insert(0, str(BENCH))  # it imports its neighbour paired_data
    try:
        import paired_music

        yield paired_music
    finally:
        sys.path.remove(str(BENCH))


def _score(path: Path) -> Path:
    """Two parts, a melody and a bass line, with a rest, at 120 bpm in 4/4, 8 s long."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    melody, bass = pretty_midi.Instrument(0, name="melody"), pretty_midi.Instrument(0, name="bass")
    for k in range(16):
        if 4 <= k < 6:
            continue  # a rest of a second
        melody.notes.append(pretty_midi.Note(80, 72 + k % 5, 0.5 * k, 0.5 * k + 0.45))
        bass.notes.append(pretty_midi.Note(70, 40 + k % 3, 0.5 * k, 0.5 * k + 0.5))
    pm.instruments += [melody, bass]
    pm.write(str(path))
    return path


def test_band_palette_gives_the_lowest_part_the_bass_and_adds_the_same_drums(paired_music, tmp_path):
    midi = _score(tmp_path / "score.mid")
    source, target = (paired_music.arrange(midi, p, seconds=5.0) for p in paired_music.PAIRS["band-rock"])
    for pm, palette in ((source, paired_music.PAIRS["band-rock"][0]), (target, paired_music.PAIRS["band-rock"][1])):
        melody, bass, drums = pm.instruments
        assert (melody.program, bass.program) == (palette.programs[0], palette.bass)
        assert drums.is_drum and drums.program == palette.kit
        assert all(n.start < 5.0 and n.end <= 5.0 for i in pm.instruments for n in i.notes)
    assert source.instruments[2].program != target.instruments[2].program  # another kit
    # Both sides play the same notes at the same times: only the programs differ.
    for a, b in zip(source.instruments, target.instruments):
        assert [(n.pitch, n.start, n.end, n.velocity) for n in a.notes] == [
            (n.pitch, n.start, n.end, n.velocity) for n in b.notes
        ]
    hits = source.instruments[2].notes
    kicks = [n.start for n in hits if n.pitch == paired_music.KICK]
    assert kicks and all(abs(t % 2.0) < 1e-6 for t in kicks)  # beat one of each 4/4 bar at 120 bpm


def test_piano_guitar_palette_gives_every_part_one_program(paired_music, tmp_path):
    midi = _score(tmp_path / "score.mid")
    source, target = (paired_music.arrange(midi, p, seconds=8.0) for p in paired_music.PAIRS["piano-guitar"])
    assert [i.program for i in source.instruments] == [0, 0]
    assert [i.program for i in target.instruments] == [30, 30]
    assert len(source.instruments[0].notes) == 14  # the rest stays a rest


def test_training_and_held_out_pieces_are_different_works(paired_music):
    work = lambda name: name.rsplit("/movement", 1)[0]  # noqa: E731
    assert not {work(n) for n in paired_music.TRAIN} & {work(n) for n in paired_music.TEST}
    assert len(paired_music.TRAIN) >= 20 and len(paired_music.TEST) >= 10
