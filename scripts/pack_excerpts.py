"""Pack excerpts of the corpus's training tracks into a small folder of mono FLAC files: the
training audio a short GPU burst (scripts/gpu_vocoder_burst.sh) takes along when what can
travel to the GPU machine is limited (64 MiB with the repository, here).

    python scripts/pack_excerpts.py --corpus /work/corpus --out .gpu-data --seconds 19 --budget-mb 46

One excerpt from every training track (``split`` = train in the manifest of
scripts/build_corpus.py; held-out tracks never), in a seeded random order, each from a
seeded random start, until the budget is reached. Prints what it wrote.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import soundfile as sf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True, help="folder with manifest.csv")
    ap.add_argument("--out", type=Path, required=True, help="folder for the FLAC excerpts (created)")
    ap.add_argument("--seconds", type=float, default=19.0, help="length of each excerpt")
    ap.add_argument("--budget-mb", type=float, default=46.0, help="stop before the folder passes this size")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rows = [r for r in csv.DictReader((args.corpus / "manifest.csv").open()) if r["split"] == "train"]
    rng = random.Random(args.seed)
    rng.shuffle(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    total, written = 0, 0
    for i, row in enumerate(rows):
        path = args.corpus / row["path"]
        info = sf.info(path)
        frames = int(args.seconds * info.samplerate)
        start = rng.randint(0, max(0, info.frames - frames))
        audio, rate = sf.read(path, start=start, frames=frames, dtype="float32", always_2d=True)
        target = args.out / f"{i:03d}.flac"
        sf.write(target, audio.mean(axis=1), rate, subtype="PCM_16")
        size = target.stat().st_size
        if total + size > args.budget_mb * 1e6:
            target.unlink()
            break
        total, written = total + size, written + 1
    print(
        f"{written} excerpts of {args.seconds:g} s from {len(rows)} training tracks, {total / 1e6:.1f} MB in {args.out}"
    )


if __name__ == "__main__":
    main()
