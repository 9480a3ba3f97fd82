"""Wall time of short `genreshift` commands, end to end, as a user's shell runs them.

    python benchmarks/startup.py                                  # this checkout, 7 repeats
    python benchmarks/startup.py --baseline /path/to/other/checkout --repeats 9
    python benchmarks/startup.py --breakdown                      # also: what the imports cost

Times, as subprocesses, ``genreshift --help`` and ``genreshift convert x.wav --to rock``
(default options: the released weights bundled in the package, device auto, int8) of a
generated 10 s 44.1 kHz stereo WAV, from process start to exit, imports, model loading and
the interpreter's teardown included. Each checkout runs as ``python -m genreshift`` with
PYTHONPATH set to it, so this checkout and ``--baseline`` share one interpreter and one
virtualenv; the runs of the two alternate, so both see the same load. Other processes share
the cores: the minimum over the repeats is the figure to compare (the median says how noisy
the machine was). With ``--baseline`` it also says whether both wrote the same samples.

``--breakdown`` runs each checkout's convert once more under ``python -X importtime`` and
lists the imports that took the longest (cumulative, so nested ones overlap); imports slow
down under -X importtime, so these are shares, not the figures of the table.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SECONDS, RATE = 10.0, 44100


def make_input(path: Path) -> Path:
    """A 10 s stereo chord with a little noise, 16-bit: the models' cost does not depend on
    what the audio is, only on how long it is."""
    t = np.arange(int(SECONDS * RATE)) / RATE
    rng = np.random.default_rng(0)
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    left, right = 0.4 * chord + 0.02 * rng.standard_normal(t.size), 0.4 * chord + 0.02 * rng.standard_normal(t.size)
    sf.write(str(path), np.stack([left, right], 1).astype(np.float32), RATE, subtype="PCM_16")
    return path


def env_for(checkout: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENRESHIFT_")}  # defaults, as a user has them
    env["PYTHONPATH"] = str(checkout)
    return env


def command(name: str, wav: Path) -> list[str]:
    args = ["--help"] if name == "help" else ["convert", str(wav), "--to", "rock"]
    return [sys.executable, "-m", "genreshift", *args]


def run_once(checkout: Path, name: str, wav: Path, workdir: Path) -> float:
    """Seconds from start to exit of one command in ``workdir`` (its output: converted/rock)."""
    shutil.rmtree(workdir / "converted", ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run(command(name, wav), cwd=workdir, env=env_for(checkout), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{checkout}: `genreshift {name}` failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def output_digest(workdir: Path) -> str:
    """sha256 of the converted samples (not the file: a header may carry a time stamp)."""
    [out] = (workdir / "converted" / "rock").glob("*")
    data, _ = sf.read(str(out), dtype="float32", always_2d=True)
    return hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()


def importtime(checkout: Path, wav: Path, workdir: Path, top: int) -> list[tuple[float, str]]:
    """The ``top`` slowest imports of one convert, (cumulative ms, module), nested ones included."""
    shutil.rmtree(workdir / "converted", ignore_errors=True)
    cmd = [sys.executable, "-X", "importtime", *command("convert", wav)[1:]]
    proc = subprocess.run(cmd, cwd=workdir, env=env_for(checkout), capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            _, cumulative, name = line.split(":", 1)[1].split("|")
            depth = (len(name) - len(name.lstrip()) - 1) // 2
            if depth <= 1:  # what genreshift or the libraries it calls import, and their first children
                rows.append((int(cumulative) / 1000, "  " * depth + name.strip()))
    return sorted(rows, key=lambda r: -r[0])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another genreshift checkout to time the same way")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--breakdown", action="store_true", help="also list the slowest imports of a convert")
    args = parser.parse_args()
    checkouts = {"this checkout": ROOT}
    if args.baseline:
        if not (args.baseline / "genreshift" / "__init__.py").is_file():
            raise SystemExit(f"{args.baseline}: not a genreshift checkout (no genreshift/__init__.py)")
        checkouts = {"baseline": args.baseline.resolve(), **checkouts}
    times: dict[tuple[str, str], list[float]] = {(c, n): [] for c in checkouts for n in ("help", "convert")}
    digests: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="genreshift-startup-") as tmp:
        work = Path(tmp)
        wav = make_input(work / "x.wav")
        for label, path in checkouts.items():  # a first, unmeasured run: files into the page cache
            run_once(path, "convert", wav, work)
        for _ in range(args.repeats):
            for name in ("help", "convert"):
                for label, path in checkouts.items():
                    times[label, name].append(run_once(path, name, wav, work))
                    if name == "convert":
                        digests[label] = output_digest(work)
        breakdowns = (
            {label: importtime(path, wav, work, 14) for label, path in checkouts.items()} if args.breakdown else {}
        )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s); {args.repeats} runs of each, alternating")
    print(f"convert: a {SECONDS:.0f} s {RATE} Hz stereo WAV, `genreshift convert x.wav --to rock` (default options)\n")
    print("| checkout | command | min s | median s | max s |")
    print("|---|---|---:|---:|---:|")
    for (label, name), runs in times.items():
        print(f"| {label} | {name} | {min(runs):.2f} | {statistics.median(runs):.2f} | {max(runs):.2f} |")
    print("\nmin: the least disturbed run (other processes share the cores); compare those.")
    if args.baseline:
        same = len(set(digests.values())) == 1
        print(f"converted samples: {'identical' if same else 'DIFFERENT'} (sha256 {', '.join(digests.values())})")
    for label, rows in breakdowns.items():
        print(f"\nslowest imports of one convert, {label} (python -X importtime, cumulative ms):")
        for ms, name in rows:
            print(f"  {ms:8.1f}  {name}")


if __name__ == "__main__":
    main()
