"""Does `genreshift finetune --paired` learn what a pair teaches? A paired benchmark.

    python benchmarks/paired.py [--work DIR] [--max-minutes 15] [--model PATH] [--json OUT]

1. Builds its own paired data (benchmarks/paired_data.py): generated MIDI pieces rendered
   with fluidsynth as piano (GM program 0) and as distortion guitar (program 30). Training
   and held-out pieces come from different seeds.
2. Trains with the user's command, `genreshift finetune --paired --max-minutes N` (or takes
   an existing translator with --model).
3. On the held-out pieces, the log-mel L1 to the true target rendering of
   - identity: the source mel itself;
   - equaliser: the source mel plus a per-mel-bin mean offset learned from the training
     pairs (no network);
   - affine equaliser: a per-mel-bin least-squares scale and offset fitted on the training
     pairs (the closed form a new paired translator starts from, before any training);
   - genreshift: the translator run over the whole piece with `convert`'s overlapping,
     cross-faded windows.
   and genreshift's error as a fraction of the equaliser's (the target is <= 0.75).

Everything stays in mel space, so the figure is about the translator, not the vocoder.
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

from genreshift import checkpoint, chunking  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "genreshift-paired")
    ap.add_argument("--train-pieces", type=int, default=32)
    ap.add_argument("--test-pieces", type=int, default=8)
    ap.add_argument("--bars", type=int, default=16, help="bars per piece (about 30-50 s)")
    ap.add_argument("--source-program", type=int, default=0, help="GM program of the source (0: piano)")
    ap.add_argument("--target-program", type=int, default=30, help="GM program of the target (30: distortion guitar)")
    ap.add_argument("--max-minutes", type=float, default=15.0)
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--model", type=Path, help="evaluate this translator instead of training one")
    ap.add_argument("--finetune-arg", action="append", default=[], help="extra finetune option (repeatable)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    work = args.work / f"p{args.source_program}-to-p{args.target_program}"
    started = time.perf_counter()
    train_names = paired_data.build(work / "train", args.train_pieces, args.bars, args.source_program,
                                    args.target_program, seed=1)  # fmt: skip
    test_names = paired_data.build(work / "test", args.test_pieces, args.bars, args.source_program,
                                   args.target_program, seed=2)  # fmt: skip
    print(f"data: {len(train_names)} training and {len(test_names)} held-out pieces in {work} "
          f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip

    model_path, seconds = (args.model, 0.0) if args.model else train(work, args.max_minutes, args.steps,
                                                                      args.finetune_arg)  # fmt: skip
    ckpt = checkpoint.load(model_path)
    model = ckpt.build("cpu").eval()
    train_mels, test = mels(work / "train", train_names), mels(work / "test", test_names)
    offset = equaliser(train_mels)
    scale, shift = paired_colour(*(torch.cat([p[k] for p in train_mels], -1)[None] for k in (0, 1)))
    rows = {
        "identity": l1(test, [a for a, _ in test]),
        "equaliser": l1(test, [a + offset for a, _ in test]),
        "affine eq": l1(test, [MEL_CENTER + scale[:, None] * (a - MEL_CENTER) + shift[:, None] for a, _ in test]),
        "genreshift": l1(test, [translate(model, a) for a, _ in test]),
    }
    ratio = rows["genreshift"] / rows["equaliser"]
    steps = ckpt.meta.get("steps")
    print(f"\nheld-out log-mel L1 to the true target ({len(test)} pieces; model {model_path}, {steps} steps"
          + (f", command took {seconds / 60:.1f} min" if seconds else "") + ")")  # fmt: skip
    for name, value in rows.items():
        print(f"  {name:<11} {value:.4f}")
    print(f"  genreshift / equaliser = {ratio:.3f} (target <= 0.75: {'met' if ratio <= 0.75 else 'missed'})")
    if args.json:
        args.json.write_text(json.dumps({**rows, "ratio": ratio, "steps": steps, "train_seconds": seconds}, indent=1))


if __name__ == "__main__":
    main()
