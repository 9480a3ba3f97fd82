"""How close `genreshift convert` output comes to full scale, on any folder of audio.

    OMP_NUM_THREADS=2 python benchmarks/clipping.py FILE_OR_FOLDER... [--genres rock,electronic,orchestral]
        [--loud-db 12] [--seconds S] [--no-level] [--per-file] [--measure-only]

Every input is decoded to a float WAV copy (an excerpt of ``--seconds`` from 30% into it, if
given), so the output is float too and what is measured is the pipeline, not an encoder's
rounding. With ``--loud-db D`` each copy also gets a loud master: gained by D dB and hard
clipped at full scale. Both sets are converted to every genre with the released weights
and default options (CPU). Printed per genre and set, over all its output samples:

- ``>= 0.999``: the share of samples at full scale (what "clipped" means elsewhere);
- ``at ceiling``: the share within 0.1 dB of the limiter's ceiling, -0.3 dBFS (>= 0.9550);
- ``max``: the largest sample, and ``max 4x``: the largest 4x-oversampled peak (a 32-zero
  sinc, finer than the limiter's own 16-tap detector), both in dBFS.

The inputs get the same row, so "the input had none" can be seen. ``--measure-only`` measures
the given files as they are. The genreshift imported is the first on ``sys.path``: set
PYTHONPATH to another checkout to measure that one (the path is printed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # after PYTHONPATH: another checkout given there is the one measured

CEILING = 10 ** (-0.3 / 20)
NEAR = CEILING * 10 ** (-0.1 / 20)
FULL_SCALE = 0.999
CHUNK = 1 << 20  # samples per channel oversampled at a time


class Tally:
    """Sample counts over many files."""

    def __init__(self) -> None:
        self.files = self.samples = self.full = self.near = 0
        self.peak = self.true_peak = 0.0

    def add(self, x: np.ndarray) -> None:
        a = np.abs(x)
        self.files += 1
        self.samples += a.size
        self.full += int(np.count_nonzero(a >= FULL_SCALE))
        self.near += int(np.count_nonzero(a >= NEAR))
        self.peak = max(self.peak, float(a.max(initial=0)))
        self.true_peak = max(self.true_peak, oversampled_peak(x))

    def row(self, name: str) -> str:
        share = 100 / max(1, self.samples)
        return (f"| {name} | {self.files} | {self.samples} | {self.full * share:.4f}% | {self.near * share:.4f}% | "
                f"{db(self.peak)} | {db(self.true_peak)} |")  # fmt: skip


def db(x: float) -> str:
    return f"{20 * np.log10(x):+.2f}" if x > 0 else "-inf"


def oversampled_peak(x: np.ndarray) -> float:
    """Largest |x| on a 4x grid, (frames, channels) float input, in chunks with overlap."""
    import torch
    import torchaudio

    wave = torch.from_numpy(np.ascontiguousarray(np.atleast_2d(x.T), dtype=np.float32))
    pad, peak = 64, 0.0
    for at in range(0, wave.shape[-1], CHUNK):
        lo, hi = max(0, at - pad), min(wave.shape[-1], at + CHUNK + pad)
        up = torchaudio.functional.resample(wave[:, lo:hi], 1, 4, lowpass_filter_width=32, rolloff=0.99)
        keep = up[:, 4 * (at - lo) : 4 * (min(at + CHUNK, wave.shape[-1]) - lo)]
        peak = max(peak, float(keep.abs().max()))
    return peak


def float_copies(
    paths: list[Path], folder: Path, seconds: float | None, loud_db: float | None
) -> dict[str, list[Path]]:
    """Float WAV copies of the inputs (excerpts if ``seconds``) and, with ``loud_db``, their loud masters."""
    sets: dict[str, list[Path]] = {"input": []}
    if loud_db is not None:
        sets[f"+{loud_db:g} dB clipped"] = []
    for i, path in enumerate(paths):
        info = sf.info(str(path))
        start, frames = 0, -1
        if seconds is not None:
            start = int(max(0.0, min(info.duration * 0.3, info.duration - seconds)) * info.samplerate)
            frames = int(seconds * info.samplerate)
        data, rate = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
        name = f"{i:04d}-{path.stem}.wav"
        for key, audio in zip(sets, [data, np.clip(data * 10 ** ((loud_db or 0) / 20), -1, 1)]):
            out = folder / key.replace(" ", "_") / name
            out.parent.mkdir(parents=True, exist_ok=True)
            sf.write(out, audio, rate, subtype="FLOAT")
            sets[key].append(out)
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--genres", default="rock,electronic,orchestral")
    parser.add_argument("--loud-db", type=float, default=None, help="also convert loud masters: +D dB, hard clipped")
    parser.add_argument("--seconds", type=float, default=None, help="an excerpt of each input, from 30%% into it")
    parser.add_argument("--no-level", action="store_true", help="convert with --no-level")
    parser.add_argument("--per-file", action="store_true")
    parser.add_argument("--measure-only", action="store_true", help="measure the files as they are")
    args = parser.parse_args()

    import genreshift
    from genreshift.audio import find_tracks
    from genreshift.pipeline import Converter, ConvertOptions

    tracks, problems = find_tracks(args.paths)
    for line in problems:
        print(line, file=sys.stderr)
    print(f"genreshift {genreshift.__version__} from {Path(genreshift.__file__).parent}")
    print("| output | files | samples | >= 0.999 | at ceiling (>= -0.4 dBFS) | max (dBFS) | max 4x (dBFS) |")
    print("|---|---|---|---|---|---|---|")
    if args.measure_only:
        tally = Tally()
        for t in tracks:
            tally.add(sf.read(str(t.path), dtype="float32", always_2d=True)[0])
        print(tally.row("as given"))
        return
    with tempfile.TemporaryDirectory() as tmp:
        sets = float_copies([t.path for t in tracks], Path(tmp) / "in", args.seconds, args.loud_db)
        for key, inputs in sets.items():
            tally = Tally()
            for p in inputs:
                tally.add(sf.read(str(p), dtype="float32", always_2d=True)[0])
            print(tally.row(f"{key} (before conversion)"))
        for genre in args.genres.split(","):
            for key, inputs in sets.items():
                out = Path(tmp) / genre / key.replace(" ", "_")
                conv = Converter(ConvertOptions(genre=genre, output=out, device="cpu", level=not args.no_level))
                tally = Tally()
                for result in conv.convert(inputs):
                    if result.status != "converted":
                        print(f"{result.source}: {result.message}", file=sys.stderr)
                        continue
                    y = sf.read(str(result.output), dtype="float32", always_2d=True)[0]
                    tally.add(y)
                    if args.per_file:
                        one = Tally()
                        one.add(y)
                        print(one.row(f"{genre}, {key}: {result.source.name}"))
                print(tally.row(f"{genre}, {key}"), flush=True)


if __name__ == "__main__":
    main()
