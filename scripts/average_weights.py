"""Average the weights of several checkpoints of one model, such as a run's exports a few
hundred steps apart:

    python scripts/average_weights.py --out runs/v3/avg.pt runs/v3/a-21500.pt runs/v3/a-22000.pt runs/v3/a-22500.pt

A training run with a fixed learning rate moves around a minimum from save to save; the mean
of its last few exports often scores better than any one of them (for the integrated-phase
vocoder, docs/training.md). The files must be the same model: kind, arch, config, mel
settings and weight shapes. The result takes the last file's metadata, with the averaged
files' step counts added as ``meta["averaged_steps"]``, and no training state; it is saved
in float32 (``scripts/package_weights.py`` makes the fp16 release or candidate file).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from genreshift import checkpoint


def average(paths: list[Path]) -> checkpoint.Checkpoint:
    """The checkpoint whose weights are the mean of ``paths``' weights (SystemExit, naming
    the file, when they are not the same model)."""
    if len(paths) < 2:
        raise SystemExit("give at least two checkpoints to average")
    try:
        ckpts = [checkpoint.load(p) for p in paths]
    except checkpoint.CheckpointError as exc:
        raise SystemExit(str(exc)) from None
    first = ckpts[0]
    for path, ckpt in zip(paths[1:], ckpts[1:]):
        same = (ckpt.kind, ckpt.arch, ckpt.config, ckpt.mel) == (first.kind, first.arch, first.config, first.mel)
        shapes = {k: v.shape for k, v in ckpt.state_dict.items()}
        if not same or shapes != {k: v.shape for k, v in first.state_dict.items()}:
            raise SystemExit(f"{path}: not the same model as {paths[0]} (kind, arch, config, mel or weight shapes)")
    state = {}
    for key, value in first.state_dict.items():
        if value.is_floating_point():
            state[key] = torch.stack([c.state_dict[key].float() for c in ckpts]).mean(0)
        else:  # counters and the like must agree; they are not averaged
            if any(not torch.equal(c.state_dict[key], value) for c in ckpts):
                raise SystemExit(f"{key}: differs between the files and cannot be averaged")
            state[key] = value
    last = ckpts[-1]
    meta = {**last.meta, "averaged_steps": [c.meta.get("steps") for c in ckpts]}
    return checkpoint.Checkpoint(last.kind, last.arch, last.config, last.mel, state, genres=last.genres,
                                 vocoder=last.vocoder, meta=meta)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    checkpoint.save(average(args.checkpoints), args.out)
    print(f"wrote {args.out}: the mean of {len(args.checkpoints)} checkpoints")


if __name__ == "__main__":
    main()
