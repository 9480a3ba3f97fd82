#!/usr/bin/env bash
# GPU check: everything genreshift wants to know from a GPU machine, in one run of about
# 8 minutes, with no network.
#
#   scripts/gpu_check.sh [--out DIR] [--work DIR] [--python PY] [--wheels DIR] [--cpu-smoke]
#
# --out gets the figures only (small text files); generated audio, models and checkpoints go
# a fresh folder under --work (default: $TMPDIR or /tmp), removed at the end.
#
# Steps (each with its own time limit; a failed step is reported and the others still run):
#   1. env       GPU name and memory, driver, torch and CUDA versions          (env.txt)
#   2. tests     the test suite with CUDA visible (but the speed smoke test)   (tests.log)
#   3. speed     benchmarks/speed.py on CUDA: end to end, batch 16/64/256, per stage,
#                long inputs; peak RSS and peak GPU memory of every run        (speed.md, speed.json)
#   4. library   benchmarks/speed.py --library: 200 files of 15 s to 5 min, end to end with
#                --batch-size auto and 1 and the default --workers; how busy decode, write,
#                the models and the GPU were                                 (library.md, library.json)
#   5. finetune  a 1-minute finetune burst on generated audio (stopped by SIGTERM, which
#                saves a checkpoint); steps/s and GPU memory sampled by nvidia-smi
#                                                    (finetune.log, finetune-log.jsonl, finetune-gpu-memory.csv)
#   6. summary   the figures in one page                                       (summary.md)
#
# The repository itself is imported (PYTHONPATH), so nothing is installed for genreshift. Its
# dependencies must be importable by PY (default: python3). On a machine without them, bring
# wheels downloaded beforehand on a machine with network, for the GPU machine's Python:
#   pip download -d wheels -r .ci/requirements.txt
# and pass --wheels wheels: a virtualenv is built from them first (not counted in the 8 min).
#
# --cpu-smoke runs the same steps on the CPU at toy sizes (a few tests, --quick speed, a
# library of 3 short files, a 20-second burst of a tiny model): it checks this script, and
# gives no GPU figure.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out="" work="" py="${PYTHON:-python3}" wheels="" smoke=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --python) py=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --wheels) wheels=$2; shift 2 ;;
    --cpu-smoke) smoke=1; shift ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
out=${out:-$repo/gpu-check-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
mkdir -p "${work:=${TMPDIR:-/tmp}}"
work=$(mktemp -d "$work/genreshift-gpu-check.XXXXXX")  # ours alone: removed on exit
trap 'rm -rf "$work"' EXIT
failed=()
say() { echo "gpu_check: $*" | tee -a "$out/steps.txt" >&2; }
fail() { failed+=("$1"); say "FAILED: $1 ($2)"; }

# -- a Python with the dependencies ---------------------------------------------------------
deps="import torch, torchaudio, typer, rich, soundfile, pooch, numpy, pytest"
if ! "$py" -c "$deps" 2>/dev/null; then
  if [ -z "$wheels" ]; then
    say "$py lacks genreshift's dependencies ($deps); pass --python or --wheels DIR"; exit 1
  fi
  say "building $repo/.gpu-check-venv from $wheels (no network)"
  "$py" -m venv "$repo/.gpu-check-venv" || { say "cannot create a virtualenv"; exit 1; }
  "$repo/.gpu-check-venv/bin/pip" install --quiet --no-index --find-links "$wheels" -r .ci/requirements.txt \
    || { say "installing from $wheels failed"; exit 1; }
  py=$repo/.gpu-check-venv/bin/python
fi
export PYTHONPATH=$repo${PYTHONPATH:+:$PYTHONPATH}
export GENRESHIFT_OFFLINE=1 GENRESHIFT_HOME=$work/home GENRESHIFT_CACHE=$work/cache
started=$(date +%s)
elapsed() { echo $(( $(date +%s) - started )); }

if [ $smoke = 1 ]; then
  device=cpu
  tests=(tests/test_scale.py -k "not torchrun")
  speed=(--quick --only stages --batches 2,4 --vocoders fast)
  lib=(--quick --library-files 3 --library-workers 1,2)
  burst=20 tune=(--channels 16 --blocks 2 --window-frames 32 --disc-channels 16 --siamese-channels 16 --siamese-dim 16 --batch-size 4)
else
  device=cuda
  # The speed smoke test is left out: step 3 runs the real benchmark on the GPU.
  tests=(--deselect tests/test_benchmark_speed.py::test_speed_benchmark_quick)
  speed=(--batches 16,64,256 --batch 64 --threads 8 --vocoders fast --only e2e,batch,stages --long-minutes 10)
  lib=(--library-files 200 --threads 8)
  burst=60 tune=(--batch-size 16)
fi

# -- 1. env -----------------------------------------------------------------------------------
{
  date -u +"%Y-%m-%d %H:%M UTC"
  "$py" - "$device" <<'EOF'
import platform, sys, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA build {torch.version.cuda}")
if sys.argv[1] == "cuda":
    if not torch.cuda.is_available():
        sys.exit("CUDA is not available to torch: no GPU visible, a CPU-only torch, or a driver problem")
    p = torch.cuda.get_device_properties(0)
    print(f"GPU: {torch.cuda.get_device_name(0)}, {p.total_memory / 2**30:.1f} GiB, {torch.cuda.device_count()} visible, bf16 {torch.cuda.is_bf16_supported()}")
EOF
} > "$out/env.txt" 2>&1 || { cat "$out/env.txt" >&2; say "no usable device: stopping"; exit 1; }
[ $smoke = 1 ] || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$out/env.txt" 2>&1 || true
cat "$out/env.txt" >&2

# -- 2. tests -----------------------------------------------------------------------------------
say "tests (limit 140 s) ..."
timeout -k 10 140 "$py" -m pytest -q -x -p no:cacheprovider "${tests[@]}" > "$out/tests.log" 2>&1
rc=$?
tail -n 3 "$out/tests.log" >&2
[ $rc = 0 ] || fail tests "exit $rc$([ $rc = 124 ] && echo ': ran past 140 s'); see tests.log"

# -- 3. speed -----------------------------------------------------------------------------------
say "speed (limit 180 s) ... [$(elapsed) s so far]"
timeout -k 10 180 "$py" benchmarks/speed.py --device "$device" --repeats 1 --workdir "$work/speed" \
  --json "$out/speed.json" "${speed[@]}" > "$out/speed.md" 2> "$out/speed.log"
rc=$?
[ $rc = 0 ] && cat "$out/speed.md" >&2 || fail speed "exit $rc; see speed.log"

# -- 4. library ---------------------------------------------------------------------------------
say "library (limit 200 s) ... [$(elapsed) s so far]"
timeout -k 10 200 "$py" benchmarks/speed.py --library --device "$device" --repeats 1 --workdir "$work/speed" \
  --json "$out/library.json" "${lib[@]}" > "$out/library.md" 2> "$out/library.log"
rc=$?
[ $rc = 0 ] && cat "$out/library.md" >&2 || fail library "exit $rc$([ $rc = 124 ] && echo ': ran past 200 s'); see library.log"

# -- 5. finetune burst -----------------------------------------------------------------------------
say "finetune burst ($burst s) ... [$(elapsed) s so far]"
"$py" - "$work/tune-data" <<'EOF' || fail finetune "could not generate its audio"
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from speed import make_track
root = Path(sys.argv[1])
for side, seed in [("source", 100), ("target", 200)]:
    for i in range(4):
        make_track(root / side / f"{i}.wav", 30.0, seed + i)
EOF
sampler=""
if [ $smoke = 0 ] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader,nounits -lms 500 > "$out/finetune-gpu-memory.csv" 2>/dev/null &
  sampler=$!
fi
# SIGTERM after $burst seconds: finetune saves last.pt and exits 143, as convert does (see docs/finetune.md).
timeout --preserve-status -k 60 -s TERM "$burst" "$py" -m genreshift finetune --source "$work/tune-data/source" \
  --target "$work/tune-data/target" --name gpucheck --device "$device" --steps 1000000 --eval-every 1000000 \
  --save-every 1000000 --log-every 10 --run-dir "$work/finetune-run" --out "$work/finetune-model" "${tune[@]}" \
  > "$out/finetune.log" 2>&1
rc=$?
[ -n "$sampler" ] && kill "$sampler" 2>/dev/null
cp "$work/finetune-run/log.jsonl" "$out/finetune-log.jsonl" 2>/dev/null
if [ $rc != 143 ] || [ ! -f "$work/finetune-run/last.pt" ] || [ ! -s "$out/finetune-log.jsonl" ]; then
  fail finetune "exit $rc (expected 143 after SIGTERM), last.pt or log.jsonl missing; see finetune.log"
fi

# -- 6. summary -----------------------------------------------------------------------------------
"$py" - "$out" "$(elapsed)" "${failed[*]:-}" <<'EOF' > "$out/summary.md" || fail summary "see summary.md"
import json, sys
from pathlib import Path
out, seconds, failed = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
print(f"# genreshift GPU check\n\n{(out / 'env.txt').read_text()}\ntotal {seconds} s; failed steps: {failed or 'none'}\n")
log = out / "tests.log"
if log.exists():
    print(f"tests: {log.read_text().strip().splitlines()[-1] if log.read_text().strip() else 'no output'}\n")
lib = out / "library.json"
if lib.exists():
    rows = json.loads(lib.read_text())["rows"]
    best = max(rows, key=lambda r: r["rtf"] or 0, default=None)
    if best:
        verdict = "met" if best["rtf"] >= 1000 else "NOT met"
        print(f"library end to end, best: {best['rtf']:.0f}x real time ({best['name']}); target >= 1000x: {verdict}")
        busy = best["runs"][0].get("busy", {})
        shares = {k: v / best["wall_s"] / (best["runs"][0]["workers"] if k in ("decode", "write") else 1)
                  for k, v in busy.items() if v is not None}
        if shares:
            bound = max(shares, key=shares.get)
            print(f"busiest: {bound} ({shares[bound]:.0%} of the wall time): the stage that bounds it\n")
    print((out / "library.md").read_text())
speed = out / "speed.json"
if speed.exists():
    print((out / "speed.md").read_text())
tune = out / "finetune-log.jsonl"
if tune.exists():
    entries = [json.loads(line) for line in tune.read_text().splitlines() if line.strip()]
    steps = [e for e in entries if "steps_per_s" in e]
    if steps:
        print(f"\nfinetune burst: step {steps[-1]['step']}, {steps[-1]['steps_per_s']:.2f} steps/s")
mem = out / "finetune-gpu-memory.csv"
if mem.exists() and mem.read_text().strip():
    used = [float(line.split(",")[1]) for line in mem.read_text().splitlines() if "," in line]
    print(f"finetune GPU memory (nvidia-smi, whole device): peak {max(used):.0f} MiB")
EOF
cat "$out/summary.md"
say "done in $(elapsed) s; figures in $out"
if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED steps: ${failed[*]}"
  exit 1
fi
