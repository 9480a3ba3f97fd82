"""Does the style judge hear the instruments or the arrangement? (issue 20, lab notes)

    python benchmarks/judge_palettes.py [--out /work/exp/palette]

Twelve generated pieces per genre, each arranged the genre's way (rock: power chords and bass
in eighths, a backbeat; electronic: four on the floor, offbeat hats, a pad and a 16th
arpeggio; orchestral: held four-note chords, bass in halves, a melody, a drum on the
downbeat), rendered with fluidsynth twice with the same notes and hits: with a neutral palette
(piano, acoustic bass, flute, standard kit) and with the genre's own (rock: distortion and
overdriven guitars, electric bass, power kit; electronic: pad, synth bass, saw lead, the
808 kit; orchestral: strings, contrabass, horn, orchestra kit). Prints the judge's verdicts
per arrangement and palette. Needs fluidsynth, fluid-soundfont-gm and pretty_midi.
"""

import argparse
import collections
import random
from pathlib import Path

import pretty_midi
import soundfile as sf
import torch

import paired_data
import style_judge as sj

KICK, SNARE, HAT, CRASH, TOM = 36, 38, 42, 49, 45


def piece(rng, genre):
    bpm = {"rock": rng.uniform(110, 160), "electronic": rng.uniform(118, 132), "orchestral": rng.uniform(70, 110)}[
        genre
    ]
    beat = 60 / bpm
    tonic = 40 + rng.randrange(12)
    prog = rng.choice(((0, 5, 3, 7), (0, 3, 5, 5), (0, 10, 8, 7), (0, 7, 9, 5)))
    parts = {"chords": [], "bass": [], "lead": [], "drums": []}
    bars = 10
    for b in range(bars):
        root = tonic + prog[b % 4]
        t0 = b * 4 * beat
        if genre == "rock":  # power chords in eighths, bass eighths, backbeat
            for e in range(8):
                t = t0 + e * beat / 2
                for n in (root + 12, root + 19, root + 24):
                    parts["chords"].append((n, t, t + beat / 2 * 0.9, 100))
                parts["bass"].append((root, t, t + beat / 2 * 0.9, 100))
                parts["drums"].append((HAT, t, t + 0.05, 80))
            for q in range(4):
                parts["drums"].append((KICK if q in (0, 2) else SNARE, t0 + q * beat, t0 + q * beat + 0.1, 110))
        elif genre == "electronic":  # four on the floor, offbeat hats, sustained pad, arpeggio lead
            for q in range(4):
                t = t0 + q * beat
                parts["drums"].append((KICK, t, t + 0.1, 110))
                parts["drums"].append((HAT, t + beat / 2, t + beat / 2 + 0.05, 80))
                if q in (1, 3):
                    parts["drums"].append((SNARE, t, t + 0.1, 90))
            for n in (root + 24, root + 27 if rng.random() < 0.5 else root + 28, root + 31):
                parts["chords"].append((n, t0, t0 + 4 * beat * 0.98, 70))
            for s in range(16):
                t = t0 + s * beat / 4
                parts["lead"].append((root + 36 + (0, 7, 12, 19)[s % 4], t, t + beat / 4 * 0.8, 90))
                if s % 2 == 0:
                    parts["bass"].append((root + 12, t, t + beat / 4 * 0.9, 100))
        else:  # orchestral: sustained chords, bass in halves, horn melody, timpani on downbeats
            for n in (root + 12, root + 19, root + 24, root + 28):
                parts["chords"].append((n, t0, t0 + 4 * beat * 0.98, rng.randint(50, 90)))
            for h in range(2):
                parts["bass"].append((root, t0 + 2 * h * beat, t0 + 2 * h * beat + 2 * beat * 0.95, 80))
            t = t0
            while t < t0 + 4 * beat - 1e-6:
                d = rng.choice((1, 1, 2)) * beat
                parts["lead"].append(
                    (root + 24 + rng.choice((0, 2, 4, 7, 9, 12)), t, t + d * 0.95, rng.randint(60, 95))
                )
                t += d
            parts["drums"].append((TOM, t0, t0 + 0.5, 90))
    return parts, bars * 4 * beat


PALETTES = {  # part -> GM program; drums: kit program
    "neutral": {"chords": 0, "bass": 32, "lead": 73, "drums": 0},
    "rock": {"chords": 30, "bass": 33, "lead": 29, "drums": 16},
    "electronic": {"chords": 89, "bass": 38, "lead": 81, "drums": 25},
    "orchestral": {"chords": 48, "bass": 43, "lead": 60, "drums": 48},
}


def render(parts, seconds, palette, out):
    pm = pretty_midi.PrettyMIDI()
    for name, notes in parts.items():
        if not notes:
            continue
        inst = pretty_midi.Instrument(program=PALETTES[palette][name], is_drum=(name == "drums"))
        inst.notes = [pretty_midi.Note(v, p, s, e) for p, s, e, v in notes]
        pm.instruments.append(inst)
    mid = out.with_suffix(".mid")
    pm.write(str(mid))
    paired_data.render(mid.read_bytes(), paired_data.find_soundfont(), 22050, out, seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("palette-renders"))
    ap.add_argument("--judge", type=Path, default=sj.DEFAULT_WEIGHTS)
    args = ap.parse_args()
    judge, _ = sj.load_judge(args.judge)
    for genre in ("rock", "electronic", "orchestral"):
        for palette in ("neutral", genre):
            counts = collections.Counter()
            for i in range(12):
                parts, secs = piece(random.Random(1000 * i + len(genre)), genre)
                out = args.out / genre / palette / f"p{i:02d}.wav"
                out.parent.mkdir(parents=True, exist_ok=True)
                if not out.exists():
                    render(parts, secs, palette, out)
                a, _ = sf.read(out, dtype="float32")
                counts[sj.verdict(judge, torch.from_numpy(a))] += 1
            print(f"{genre} arrangement, {palette} palette: {dict(counts)}", flush=True)


if __name__ == "__main__":
    main()
