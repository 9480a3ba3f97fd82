"""Loudness and clipping of `genreshift convert` on real music, with and without levelling.

    OMP_NUM_THREADS=1 python benchmarks/loudness.py TRACK... [--seconds 30] [--json out.json]
    OMP_NUM_THREADS=1 python benchmarks/loudness.py --examples     # the clips in examples/

For each track, an excerpt of ``--seconds`` from 30% into it is converted to every released
genre with the released weights, once as released (``--no-level``: the models' own level,
hard-clamped output as before) and once with loudness levelling and the soft limiter (the
default). Printed per conversion: the input's RMS (dBFS, all channels), the output's RMS
change against it, and the share of output samples at full scale (|x| >= 0.999).
``--band-limit`` adds each excerpt resampled to 8 kHz and back to 22.05 kHz (the extreme
case of issue 13).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FULL_SCALE = 0.999


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def clipped(x: np.ndarray) -> float:
    return float(np.mean(np.abs(x) >= FULL_SCALE))


def excerpt(path: Path, seconds: float, folder: Path, band_limit: bool) -> list[Path]:
    import torch
    import torchaudio

    info = sf.info(str(path))
    start = int(max(0.0, min(info.duration * 0.3, info.duration - seconds)) * info.samplerate)
    data, rate = sf.read(str(path), start=start, frames=int(seconds * info.samplerate), dtype="float32", always_2d=True)
    out = [folder / f"{path.stem}.wav"]
    sf.write(out[0], data, rate, subtype="FLOAT")
    if band_limit:
        wave = torch.from_numpy(data.T.copy())
        low = torchaudio.functional.resample(torchaudio.functional.resample(wave, rate, 8000), 8000, 22050)
        out.append(folder / f"{path.stem}-8k.wav")
        sf.write(out[1], low.T.numpy(), 22050, subtype="FLOAT")
    return out


def measure(inputs: list[Path], genres: list[str], folder: Path) -> list[dict]:
    from genreshift.pipeline import Converter, ConvertOptions

    rows = []
    for genre in genres:
        for level in (False, True):
            out = folder / f"{genre}-{'level' if level else 'raw'}"
            conv = Converter(ConvertOptions(genre=genre, output=out, level=level, format="wav"))
            for result in conv.convert(inputs):
                assert result.status == "converted", result.message
                x = sf.read(str(result.source), dtype="float64")[0]
                y = sf.read(str(result.output), dtype="float64")[0]
                rows.append({"track": result.source.stem, "genre": genre, "level": level, "in_rms_db": rms_db(x),
                             "change_db": rms_db(y) - rms_db(x), "clipped": clipped(y),
                             "correction_db": result.correction_db})  # fmt: skip
    return rows


def summary(rows: list[dict]) -> str:
    lines = [
        "| genre | levelling | RMS change: mean | worst | within ±3 dB | clipped: mean | worst |",
        "|---|---|---|---|---|---|---|",
    ]
    for genre in sorted({r["genre"] for r in rows}):
        for level in (False, True):
            sel = [r for r in rows if r["genre"] == genre and r["level"] == level]
            ch = np.array([r["change_db"] for r in sel])
            cl = np.array([r["clipped"] for r in sel]) * 100
            worst = ch[np.argmax(np.abs(ch))]
            within = int(np.sum(np.abs(ch) <= 3))
            lines.append(f"| {genre} | {'on' if level else 'off'} | {ch.mean():+.1f} dB | {worst:+.1f} dB | "
                         f"{within}/{len(sel)} | {cl.mean():.3f}% | {cl.max():.3f}% |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tracks", nargs="*", type=Path)
    parser.add_argument("--examples", action="store_true", help="use the clips in examples/")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--genres", default="rock,orchestral,electronic")
    parser.add_argument("--band-limit", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tracks = args.tracks + (sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in {".wav", ".flac", ".ogg"})
                            if args.examples else [])  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "in").mkdir()
        inputs = [p for t in tracks for p in excerpt(t, args.seconds, folder / "in", args.band_limit)]
        rows = measure(inputs, args.genres.split(","), folder)
    for r in rows:
        print(f"{r['track']:28} {r['genre']:11} level={'on ' if r['level'] else 'off'} in {r['in_rms_db']:6.1f} dBFS"
              f"  change {r['change_db']:+6.1f} dB  clipped {100 * r['clipped']:6.3f}%")  # fmt: skip
    print(summary(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
