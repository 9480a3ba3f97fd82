#!/usr/bin/env bash
# A short GPU burst for the fast vocoder v3 (integrated phase, docs/training.md), then its
# speed on that GPU: one prepared run for a lent GPU machine of ~15 minutes in all.
#
#   scripts/gpu_vocoder_burst.sh AUDIO INIT OUT [MINUTES]
#
# AUDIO    training music (folder or file); INIT  the vocoder to start from (a v2 file gets
#          integrated-phase heads, a v3 file continues); OUT  gets the weights in half
#          precision (fast.pt: the last step; best.pt: the best validation log-mel L1),
#          log.jsonl, env.txt and the speed tables; MINUTES of training (default 6).
# Environment: LR [4e-4] BATCH [64] SEGMENT [64] frames per crop, DEVICE [cuda], the loss
# weights MAGNITUDE_WEIGHT [10] IAF_WEIGHT [1] GD_WEIGHT [1] CONSISTENCY_WEIGHT [0], DISC
# (e.g. msd+mpd: discriminators from the first step; default none) and SPEED [1] (0: no speed
# tables). Nothing is installed: genreshift runs from this checkout (PYTHONPATH); its
# dependencies must be importable. Several bursts may share one GPU (a small net leaves it
# mostly idle): give each its own OUT.
set -uo pipefail
[ $# -ge 3 ] || { sed -n '2,16p' "$0"; exit 2; }
audio=$1 init=$2 out=$3 minutes=${4:-6}
cd "$(dirname "$0")/.."
mkdir -p "$out"
run=$(mktemp -d "${TMPDIR:-/tmp}/genreshift-burst.XXXXXX")
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export GENRESHIFT_HOME=${GENRESHIFT_HOME:-$run/home}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } > "$out/env.txt"
gan=()
[ -n "${DISC:-}" ] && gan=(--disc "$DISC" --gan-start 0) || gan=(--gan-start 1000000000)
start=$(date +%s)
python3 -m genreshift train-vocoder --audio "$audio" --arch fast --name fast --init "$init" --phase integrated \
  --refine-iters 0 --mel-iters 0 --lr "${LR:-4e-4}" --magnitude-weight "${MAGNITUDE_WEIGHT:-10}" \
  --iaf-weight "${IAF_WEIGHT:-1}" --gd-weight "${GD_WEIGHT:-1}" --consistency-weight "${CONSISTENCY_WEIGHT:-0}" \
  --steps 10000000 --batch-size "${BATCH:-64}" --segment-frames "${SEGMENT:-64}" --out "$run/run" \
  --export "$run/fast.pt" --device "${DEVICE:-cuda}" --eval-every 500 --save-every 500 --log-every 100 \
  "${gan[@]}" --max-minutes "$minutes" --quiet > "$out/train.log" 2>&1
echo "train-vocoder: exit $?, $(($(date +%s) - start)) s" | tee -a "$out/env.txt"
cp "$run/run/log.jsonl" "$out/" 2>/dev/null
# The weights only, in half precision as released (best.pt also holds the optimiser).
python3 -c '
import sys
from pathlib import Path
from genreshift import checkpoint
run, out = Path(sys.argv[1]), Path(sys.argv[2])
for src, name in ((run / "fast.pt", "fast.pt"), (run / "run" / "best.pt", "best.pt")):
    if src.is_file():
        ckpt = checkpoint.load(src)
        ckpt.extra = {}
        checkpoint.save(ckpt, out / name, half=True)
' "$run" "$out"
if [ "${SPEED:-1}" != 0 ] && [ -f "$out/fast.pt" ]; then
  python3 benchmarks/speed.py --device "${DEVICE:-cuda}" --only e2e,stages --vocoders fast --repeats 2 \
    --vocoder v3="$out/fast.pt" --json "$out/speed.json" > "$out/speed.md" 2>&1
  echo "speed: exit $?, $(($(date +%s) - start)) s" | tee -a "$out/env.txt"
fi
rm -rf "$run"
