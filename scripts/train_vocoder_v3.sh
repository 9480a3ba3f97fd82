#!/usr/bin/env bash
# Train the fast vocoder v3 (docs/training.md, "Vocoder v3"): an integrated-phase net
# (--phase integrated: it predicts how each bin's phase turns and where new sound enters, and
# genreshift/phase.py sums the phase along the track), so inference needs little or no
# Griffin-Lim. Reconstruction, magnitude, and the magnitude-weighted advance (--iaf-weight)
# and offset (--gd-weight) losses; no discriminator (a D step costs ~10x a G step on a CPU).
# On a GPU, scripts/gpu_vocoder_burst.sh runs the same recipe for a few minutes.
#
# Usage: scripts/train_vocoder_v3.sh [WORK_DIR]      (default /work; the corpus views of
#        scripts/reproduce_weights.sh must exist, or set AUDIO)
# Environment (defaults in brackets):
#   AUDIO [$WORK_DIR/corpus-views/all]   training music (folder or file)
#   INIT  [genreshift/weights/fast-v2.pt] start from these weights (a direct-phase v2 file gets
#         integrated heads, its magnitude kept); INIT=scratch trains a new net of
#         DIM/INTERMEDIATE_DIM/N_BLOCKS
#   DIM INTERMEDIATE_DIM N_BLOCKS [256 768 6]  sizes from scratch (smaller is faster at inference)
#   STEPS [100000]  LR [3e-4 from INIT, 5e-4 from scratch]  BATCH_SIZE [16]  SEGMENT_FRAMES [64]
#   IAF_WEIGHT GD_WEIGHT [1 1]  CONSISTENCY_WEIGHT [0]  MAGNITUDE_WEIGHT [10]  MEL_WEIGHT [45]
#   LOW_BAND_WEIGHT [0]  the STFT log-magnitude L1 below 4 kHz (--low-band-weight)
#   EVERY [500] steps between validations and saves   MAX_SECONDS [120] per track
#   MAX_MINUTES [none] stop after this long   RESUME=1 continues the run folder
#   REFINE [0]  N > 0: N + N Griffin-Lim iterations at inference, trained through
#         (--train-refinement; r13: REFINE=1, LR 1e-4 then 3e-5, MEL_WEIGHT 90, then
#         MAGNITUDE_WEIGHT 1; r15, released as genreshift/weights/fast-v3.pt: r13's recipe plus
#         LOW_BAND_WEIGHT 10, then packaged with 2 + 2 iterations)
#   OUT [$WORK_DIR/runs/vocoder-fast-v3]
# Judge a run with benchmarks/quality.py --vocoders-only --int8 --vocoder-file v3=OUT/fast.pt
# on a tuning split (scripts/tuning_split.py; it prints a line against issue 22's targets) and
# benchmarks/speed.py --vocoder v3=OUT/fast.pt; the in-training val_stft is not comparable.
set -euo pipefail
work="${1:-/work}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
export GENRESHIFT_HOME="${GENRESHIFT_HOME:-$work/gs-home}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-2}"
init="${INIT:-$repo/genreshift/weights/fast-v2.pt}"
out="${OUT:-$work/runs/vocoder-fast-v3}"
if [ "$init" = scratch ]; then
  start=(--dim "${DIM:-256}" --intermediate-dim "${INTERMEDIATE_DIM:-768}" --n-blocks "${N_BLOCKS:-6}" --magnitude-prior
    --phase integrated)
  lr="${LR:-5e-4}"
else
  start=(--init "$init" --phase integrated)
  lr="${LR:-3e-4}"
fi
[ "${RESUME:-}" = 1 ] && start=(--resume)  # the run folder holds the sizes, the weights and the optimizer

limit=()
[ -n "${MAX_MINUTES:-}" ] && limit=(--max-minutes "$MAX_MINUTES")
refine=(--refine-iters "${REFINE:-0}" --mel-iters "${REFINE:-0}")
[ "${REFINE:-0}" -gt 0 ] && refine+=(--train-refinement)
genreshift train-vocoder --audio "${AUDIO:-$work/corpus-views/all}" --arch fast --name fast \
  "${start[@]}" "${refine[@]}" --lr "$lr" --mel-weight "${MEL_WEIGHT:-45}" --magnitude-weight "${MAGNITUDE_WEIGHT:-10}" \
  --iaf-weight "${IAF_WEIGHT:-1}" --gd-weight "${GD_WEIGHT:-1}" --consistency-weight "${CONSISTENCY_WEIGHT:-0}" \
  --low-band-weight "${LOW_BAND_WEIGHT:-0}" \
  --steps "${STEPS:-100000}" --batch-size "${BATCH_SIZE:-16}" --segment-frames "${SEGMENT_FRAMES:-64}" \
  --out "$out" --max-seconds-per-track "${MAX_SECONDS:-120}" --eval-every "${EVERY:-500}" \
  --save-every "${EVERY:-500}" --log-every "${LOG_EVERY:-100}" --gan-start 1000000000 "${limit[@]}" --quiet
echo "vocoder: $out/fast.pt (validation in $out/log.jsonl, samples in $out/samples/)"
