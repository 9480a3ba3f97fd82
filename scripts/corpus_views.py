"""Folder views of the corpus for training: symlinks, so nothing is copied.

    python scripts/corpus_views.py --corpus /work/corpus --out /work/corpus-views

Reads <corpus>/manifest.json (scripts/build_corpus.py) and makes, from the *train* split only:
    <out>/all/<genre>/...          every training track (vocoder training)
    <out>/<genre>/...              the tracks of one genre (translator target)
    <out>/not-<genre>/<genre2>/... the tracks of every other genre (translator source)
Held-out (val) tracks never appear, so training cannot see them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src.resolve(), dst)


def build(corpus: Path, out: Path) -> dict[str, int]:
    rows = [r for r in json.loads((corpus / "manifest.json").read_text()) if r["split"] == "train"]
    if out.exists():
        shutil.rmtree(out)
    genres = sorted({r["genre"] for r in rows})
    for r in rows:
        src = corpus / r["path"]
        rel = Path(r["path"])  # <genre>/<package>/<track>.flac
        link(src, out / "all" / rel)
        link(src, out / rel)
        for g in genres:
            if g != r["genre"]:
                link(src, out / f"not-{g}" / rel)
    return {g: sum(r["genre"] == g for r in rows) for g in genres}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    counts = build(args.corpus, args.out)
    print("training tracks per genre:", ", ".join(f"{g} {n}" for g, n in counts.items()))


if __name__ == "__main__":
    main()
