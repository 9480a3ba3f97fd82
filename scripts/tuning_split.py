"""A tuning split of the corpus: some *training* tracks play the held-out part.

Settings (Griffin-Lim iterations, a stopping step, a residual bound) must not be chosen on
the benchmark's held-out tracks. This writes a corpus folder whose manifest marks a few
training tracks per genre as ``val`` and leaves the real held-out tracks out, so
``benchmarks/quality.py --corpus OUT`` measures a choice without reading the benchmark.
The audio is linked, not copied.

    python scripts/tuning_split.py --corpus /work/corpus --out /work/corpus-tune --per-genre 3

The tracks are every k-th training track of each genre in path order (k = tracks / per-genre),
so the split is the same on every machine that built the same corpus.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def tuning_rows(rows: list[dict], per_genre: int) -> list[dict]:
    """The training rows, ``per_genre`` of each genre re-marked ``val``; held-out rows dropped."""
    out = []
    for genre in sorted({r["genre"] for r in rows}):
        train = sorted((r for r in rows if r["genre"] == genre and r["split"] == "train"), key=lambda r: r["path"])
        step = max(1, len(train) // max(1, per_genre))
        picked = {r["path"] for r in train[::step][:per_genre]}
        out += [{**r, "split": "val" if r["path"] in picked else "train"} for r in train]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True, help="a corpus folder from scripts/build_corpus.py")
    ap.add_argument("--out", type=Path, required=True, help="the tuning corpus folder to write")
    ap.add_argument("--per-genre", type=int, default=3, help="training tracks per genre that play held-out")
    args = ap.parse_args()
    rows = tuning_rows(json.loads((args.corpus / "manifest.json").read_text()), args.per_genre)
    for r in rows:
        link = args.out / r["path"]
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            os.symlink((args.corpus / r["path"]).resolve(), link)
    (args.out / "manifest.json").write_text(json.dumps(rows, indent=1))
    for r in rows:
        if r["split"] == "val":
            print(f"tuning: {r['path']}")


if __name__ == "__main__":
    main()
