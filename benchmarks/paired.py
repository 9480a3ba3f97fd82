"""Does `genreshift finetune --paired` learn what a pair teaches? A paired benchmark.

    python benchmarks/paired.py [--sets piano-guitar,band-rock,generated] [--max-minutes 15] [--json OUT]

For each set of pairs, in one run:
1. Builds the paired data:
   - ``piano-guitar``, ``band-rock``: real multi-track pieces of music21's corpus, every
     part rendered with a source and a target palette (benchmarks/paired_music.py);
   - ``generated``: generated MIDI pieces rendered as piano (GM 0) and as distortion
     guitar (GM 30) (benchmarks/paired_data.py), the second row, never the only one.
   Training and held-out pieces are different pieces (different works, or seeds).
2. Trains with the user's command, `genreshift finetune --paired --max-minutes N` (or takes
   an existing translator with --model), which keeps its best step by its own held-out
   crops of the training pieces, never by the benchmark's held-out pieces.
3. On the held-out pieces (and, to see over-fitting, on the training pieces), the log-mel
   L1 to the true target rendering of
   - identity: the source mel itself;
   - equaliser: the source mel plus a per-mel-bin mean offset learned from the training
     pairs (no network);
   - affine equaliser: a per-mel-bin least-squares scale and offset fitted on the training
     pairs (the closed form a new paired translator starts from, before any training);
   - genreshift: the translator run over the whole piece with `convert`'s overlapping,
     cross-faded windows, in mel space (the translator alone);
   - through `convert` (audio in, audio out, the released vocoder): the source with no
     translation (`--strength 0`, the vocoder's own share of the error), and genreshift
     as `convert` runs it (a paired model is not levelled) and with `--level`;
   and each as a fraction of the equaliser's error (the target is <= 0.75).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paired_data  # noqa: E402
import paired_music  # noqa: E402

from genreshift import ConvertOptions, Converter, checkpoint, chunking  # noqa: E402
from genreshift.config import ChunkConfig, MelConfig  # noqa: E402
from genreshift.train.finetune_losses import paired_colour  # noqa: E402
from genreshift.translator import MEL_CENTER  # noqa: E402
from genreshift.mel import log_mel  # noqa: E402

MEL = MelConfig()
WINDOWS = ChunkConfig(size=128, overlap=32)  # convert's defaults


def mels(folder: Path, names: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Aligned (source, target) log-mels of each piece, cut to the shorter one."""
    out = []
    for name in names:
        a = log_mel(torch.from_numpy(paired_data.load(folder / "source" / name)), MEL)
        b = log_mel(torch.from_numpy(paired_data.load(folder / "target" / name)), MEL)
        n = min(a.shape[-1], b.shape[-1])
        out.append((a[:, :n], b[:, :n]))
    return out


def through_convert(model: Path, sources: list, pairs: list[tuple[torch.Tensor, torch.Tensor]], **options) -> float:
    """The L1 of the held-out source pieces (audio) sent through `convert` (in memory, the
    same code path as files) to their targets, each output cut to its target's length."""
    conv = Converter(ConvertOptions(model=str(model), device="cpu", **options))
    outs = [log_mel(torch.from_numpy(conv.convert_audio(audio, MEL.sample_rate)), MEL) for audio in sources]
    return l1(pairs, [out[:, : b.shape[-1]] for out, (_, b) in zip(outs, pairs)])


def equaliser(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """(n_mels, 1) mean of target - source over every training frame."""
    return torch.cat([b - a for a, b in pairs], dim=-1).mean(dim=-1, keepdim=True)


@torch.no_grad()
def translate(model: torch.nn.Module, mel: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """(n_mels, T) -> (n_mels, T) through overlapping windows stitched with cross-fades."""
    plan = chunking.plan_windows(mel.shape[-1], WINDOWS)
    windows = chunking.split(mel, plan)
    outs = torch.cat([model(windows[i : i + batch]) for i in range(0, len(windows), batch)])
    return chunking.stitch(outs, plan)


def l1(pairs: list[tuple[torch.Tensor, torch.Tensor]], outputs: list[torch.Tensor]) -> float:
    """Mean absolute log-mel difference over every frame of every piece."""
    total = sum(float((out - b).abs().sum()) for (_, b), out in zip(pairs, outputs))
    return total / sum(b.numel() for _, b in pairs)


def train(work: Path, minutes: float, steps: int, extra: list[str]) -> tuple[Path, float]:
    """`genreshift finetune --paired` on ``work/train``, as a user runs it."""
    model = work / "paired-bench.pt"
    cmd = [sys.executable, "-m", "genreshift", "finetune", "--paired", "--source", str(work / "train" / "source"),
           "--target", str(work / "train" / "target"), "--name", "paired-bench", "--out", str(model),
           "--run-dir", str(work / "run"), "--cache-dir", str(work / "cache"), "--max-minutes", str(minutes),
           "--steps", str(steps), "--eval-every", "500", "--save-every", "500", "--force", "--quiet", *extra]  # fmt: skip
    print("training:", " ".join(cmd[1:]), flush=True)
    env = {**os.environ, "GENRESHIFT_HOME": str(work / "home")}
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return model, time.perf_counter() - started


def build_set(name: str, work: Path, args) -> tuple[list[str], list[str]]:
    """The training and held-out pieces of one set of pairs, rendered under ``work``."""
    if name == "generated":
        build = lambda folder, count, seed: paired_data.build(folder, count, args.bars, args.source_program,  # noqa: E731
                                                              args.target_program, seed)  # fmt: skip
        return build(work / "train", args.train_pieces, 1), build(work / "test", args.test_pieces, 2)
    cache = args.work / "midi"
    build = lambda folder, names: paired_music.build(folder, names, name, args.seconds, cache)  # noqa: E731
    return build(work / "train", paired_music.TRAIN), build(work / "test", paired_music.TEST)


def judge_set(name: str, args) -> dict:
    """Build, train, and measure one set of pairs; returns its figures."""
    work = args.work / (name if name != "generated" else f"generated-p{args.source_program}-to-p{args.target_program}")
    started = time.perf_counter()
    train_names, test_names = build_set(name, work, args)
    print(f"\n[{name}] data: {len(train_names)} training and {len(test_names)} held-out pieces in {work} "
          f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    model_path, seconds = (args.model, 0.0) if args.model else train(work, args.max_minutes, args.steps,
                                                                      args.finetune_arg)  # fmt: skip
    ckpt = checkpoint.load(model_path)
    model = ckpt.build("cpu").eval()
    train_mels, test = mels(work / "train", train_names), mels(work / "test", test_names)
    offset = equaliser(train_mels)
    scale, shift = paired_colour(*(torch.cat([p[k] for p in train_mels], -1)[None] for k in (0, 1)))
    sources = [paired_data.load(work / "test" / "source" / name) for name in test_names]  # decoded once
    affine = lambda a: MEL_CENTER + scale[:, None] * (a - MEL_CENTER) + shift[:, None]  # noqa: E731
    rows = {
        "identity": l1(test, [a for a, _ in test]),
        "equaliser": l1(test, [a + offset for a, _ in test]),
        "affine eq": l1(test, [affine(a) for a, _ in test]),
        "genreshift (mel)": l1(test, [translate(model, a) for a, _ in test]),
        "convert --strength 0": through_convert(model_path, sources, test, strength=0.0),
        "convert": through_convert(model_path, sources, test),
        "convert --level": through_convert(model_path, sources, test, level=True),
    }  # fmt: skip
    on_training = {
        "equaliser": l1(train_mels, [a + offset for a, _ in train_mels]),
        "genreshift (mel)": l1(train_mels, [translate(model, a) for a, _ in train_mels]),
    }
    run = work / "run" / "last.pt"
    run_steps = checkpoint.load(run).extra["training"]["step"] if run.exists() and not args.model else None
    return {"set": name, "held_out": rows, "training_pieces": on_training, "pieces": [len(train_names), len(test_names)],
            "kept_step": ckpt.meta.get("steps"), "run_steps": run_steps, "train_seconds": seconds,
            "model": str(model_path)}  # fmt: skip


def print_set(result: dict) -> None:
    rows, eq = result["held_out"], result["held_out"]["equaliser"]
    minutes = f", command took {result['train_seconds'] / 60:.1f} min" if result["train_seconds"] else ""
    print(f"\n[{result['set']}] held-out log-mel L1 to the true target ({result['pieces'][1]} pieces; "
          f"model kept at step {result['kept_step']}"
          + (f" of {result['run_steps']}" if result["run_steps"] is not None else "") + f"{minutes})")  # fmt: skip
    print("| | held-out log-mel L1 | x equaliser |\n|---|---:|---:|")
    for name, value in rows.items():
        print(f"| {name} | {value:.4f} | {value / eq:.2f} |")
    t = result["training_pieces"]
    print(f"on its {result['pieces'][0]} training pieces: genreshift (mel) {t['genreshift (mel)']:.4f} = "
          f"{t['genreshift (mel)'] / t['equaliser']:.2f} x the equaliser")  # fmt: skip
    ratio = rows["genreshift (mel)"] / eq
    gap = rows["convert"] / rows["genreshift (mel)"] - 1
    print(f"genreshift / equaliser = {ratio:.3f} (target <= 0.75: {'met' if ratio <= 0.75 else 'missed'}); "
          f"through convert {100 * gap:+.0f}% off the mel-domain figure (target within 5%: "
          f"{'met' if abs(gap) <= 0.05 else 'missed'})", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "genreshift-paired")
    ap.add_argument("--sets", default="piano-guitar,band-rock,generated",
                    help="comma-separated: piano-guitar, band-rock (real music), generated")  # fmt: skip
    ap.add_argument("--seconds", type=float, default=40.0, help="real pieces: the first N seconds of each")
    ap.add_argument("--train-pieces", type=int, default=32, help="generated set")
    ap.add_argument("--test-pieces", type=int, default=8, help="generated set")
    ap.add_argument("--bars", type=int, default=16, help="generated set: bars per piece (about 30-50 s)")
    ap.add_argument("--source-program", type=int, default=0, help="generated set: GM program of the source")
    ap.add_argument("--target-program", type=int, default=30, help="generated set: GM program of the target")
    ap.add_argument("--max-minutes", type=float, default=15.0, help="training time per set")
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--model", type=Path, help="evaluate this translator instead of training one")
    ap.add_argument("--finetune-arg", action="append", default=[], help="extra finetune option (repeatable)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = set(sets) - {"generated", *paired_music.PAIRS}
    if unknown:
        raise SystemExit(f"--sets: unknown {', '.join(sorted(unknown))}; use piano-guitar, band-rock, generated")
    results = []
    for name in sets:
        results.append(judge_set(name, args))
        print_set(results[-1])
        if args.json:  # after each set, so a long run keeps what it measured
            args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
