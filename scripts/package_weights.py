"""Turn trained checkpoints into release files and the registry that lists them.

    python scripts/package_weights.py --vocoder fast=runs/vocoder-fast/fast.pt \
        --translator rock=runs/rock/rock.pt --translator orchestral=... --version v1

Each checkpoint is re-saved with fp16 weights as genreshift/weights/<model>-<version>.pt (the
copy bundled in the package, and the file to upload to the release host), and
genreshift/weights/registry.json is rewritten with every file's sha256, size, model version
and the genreshift release it ships with (``--package-version``, default: this checkout's). Files that
are not named on the command line keep their registry rows.

With ``--out DIR`` the files go to DIR instead and the registry is left alone: a candidate
kept for later, in the same fp16 form a release would have.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import replace
from pathlib import Path

from genreshift import __version__, checkpoint

WEIGHTS = Path(__file__).resolve().parent.parent / "genreshift" / "weights"


def package(kind: str, model: str, source: Path, version: str, vocoder: str | None, inference: dict,
            folder: Path | None = None, package_version: str = __version__) -> dict:  # fmt: skip
    ckpt = checkpoint.load(source)
    if ckpt.kind != kind:
        raise SystemExit(f"{source}: is a {ckpt.kind}, expected a {kind}")
    ckpt.extra = {}  # training state (optimizer, RNG) is not part of a release
    settings = {k: v for k, v in inference.items() if v is not None}
    if kind == "vocoder" and settings:
        if ckpt.arch != "fast":
            raise SystemExit(f"{source}: --refine-iters/--mel-iters/--window-frames apply to fast vocoders only")
        ckpt.config = replace(ckpt.config, **settings)  # inference settings, not weights
    if kind == "translator":
        ckpt.genres, ckpt.vocoder = [model], vocoder
    target = (folder or WEIGHTS) / f"{model}-{version}.pt"
    checkpoint.save(ckpt, target, half=True)
    data = target.read_bytes()
    steps = ckpt.meta.get("step") or ckpt.meta.get("steps")
    if steps and ckpt.meta.get("init_steps"):  # continued from other weights with --init
        steps += ckpt.meta["init_steps"]
    what = f"{ckpt.arch} {kind}" + (f" to {model}" if kind == "translator" else "")
    return {
        "model": model, "file": target.name, "kind": kind,
        "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
        **({"genre": model, "vocoder": vocoder} if kind == "translator" else {}),
        "description": f"{what}, {steps} training steps" if steps else what,
        "version": version, "package_version": package_version,
    }  # fmt: skip


def pairs(values: list[str]) -> list[tuple[str, Path]]:
    return [(v.split("=", 1)[0], Path(v.split("=", 1)[1])) for v in values]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocoder", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--translator", action="append", default=[], metavar="GENRE=PATH")
    ap.add_argument("--default-vocoder", default="fast", help="vocoder the translators name")
    ap.add_argument("--version", default="v1", help="the models' version, in the file names (v3)")
    ap.add_argument(
        "--package-version",
        default=__version__,
        help="the genreshift release the files ship with (default: this checkout's, %(default)s)",
    )
    ap.add_argument("--refine-iters", type=int, help="fast vocoder: Griffin-Lim iterations at inference")
    ap.add_argument("--mel-iters", type=int, help="fast vocoder: then iterations that hold the input mel")
    ap.add_argument("--window-frames", type=int, help="fast vocoder: mel frames per window in convert (default 256)")
    ap.add_argument("--out", type=Path, help="write the files here and leave the registry alone (a candidate)")
    args = ap.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    registry_file = WEIGHTS / "registry.json"
    rows = {r["model"]: r for r in json.loads(registry_file.read_text())["files"]}
    for name, path in pairs(args.vocoder):
        inference = {
            "refine_iters": args.refine_iters,
            "mel_iters": args.mel_iters,
            "window_frames": args.window_frames,
        }
        rows[name] = package("vocoder", name, path, args.version, None, inference, args.out, args.package_version)
    for name, path in pairs(args.translator):
        rows[name] = package(
            "translator", name, path, args.version, args.default_vocoder, {}, args.out, args.package_version
        )
    if args.out:
        for name, _ in pairs(args.vocoder) + pairs(args.translator):
            r = rows[name]
            print(f"{args.out / r['file']}  {r['size'] / 1e6:.2f} MB  sha256 {r['sha256']}  {r['description']}")
        return
    for row in rows.values():
        if not (WEIGHTS / row["file"]).is_file():
            raise SystemExit(f"{row['file']}: listed in the registry but missing from {WEIGHTS}")
    registry_file.write_text(json.dumps({"version": 1, "files": list(rows.values())}, indent=2) + "\n")
    total = sum(r["size"] for r in rows.values())
    for r in rows.values():
        print(f"{r['file']:28} {r['size'] / 1e6:6.2f} MB  {r['sha256'][:12]}  {r['description']}")
    print(f"total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
