#!/usr/bin/env bash
# Reproduce the released weights (docs/training.md): corpus -> views -> vocoder ->
# translators -> fp16 release files + registry -> quality table.
# Usage: scripts/reproduce_weights.sh [WORK_DIR]   (default /work; needs ~2 GB of disk)
# Step counts are those of the v2 release (docs/training.md); raise them for better models.
# It rebuilds 0.2.0's vocoder (fast v2, packaged as `fast`). 0.3.0's default, fast v3, is v2
# trained on as runs r4 -> r13 -> r15 with scripts/train_vocoder_v3.sh, 87,500 steps in all
# (docs/training.md, "Vocoder v3"; every run in docs/lab/).
# Each training command can be interrupted and continued by re-running it with --resume.
set -euo pipefail
work="${1:-/work}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
export GENRESHIFT_HOME="$work/gs-home"
# Train against an empty registry, so the genre names are free (they are built-in once released).
echo '{"version": 1, "files": []}' > "$work/empty-registry.json"
export GENRESHIFT_REGISTRY="$work/empty-registry.json"
# One thread per job: on a 2-core machine the vocoder and a translator train side by side.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

python "$repo/scripts/build_corpus.py" --out "$work/corpus"
python "$repo/scripts/corpus_views.py" --corpus "$work/corpus" --out "$work/corpus-views"

# The fast vocoder v2, reconstruction and magnitude losses only (a discriminator step costs
# ~10x a G step on a CPU): phase 1 at lr 5e-4, then phase 2 from its best.pt at lr 1e-4.
(
  genreshift train-vocoder --audio "$work/corpus-views/all" --arch fast --name fast \
    --dim 256 --intermediate-dim 768 --n-blocks 6 --lr 5e-4 --magnitude-weight 10 \
    --steps "${VOCODER_STEPS:-30000}" --batch-size 16 --segment-frames 32 --out "$work/runs/vocoder-fast-v2" \
    --max-seconds-per-track 120 --eval-every 1000 --save-every 1000 --log-every 100 --gan-start 1000000000 --quiet
  genreshift train-vocoder --audio "$work/corpus-views/all" --arch fast --name fast \
    --init "$work/runs/vocoder-fast-v2/best.pt" --lr 1e-4 --magnitude-weight 10 \
    --steps "${VOCODER_STEPS_2:-8000}" --batch-size 16 --segment-frames 32 --out "$work/runs/vocoder-fast-v2b" \
    --max-seconds-per-track 120 --eval-every 1000 --save-every 1000 --log-every 100 --gan-start 1000000000 --quiet
) &

# One translator per genre: target = the genre, source = the other genres pooled.
declare -A steps=([rock]=2250 [orchestral]=1750 [electronic]=1500)
for genre in rock orchestral electronic; do
  genreshift finetune --source "$work/corpus-views/not-$genre" --target "$work/corpus-views/$genre" \
    --name "$genre" --init scratch --steps "${steps[$genre]}" --batch-size 16 \
    --out "$work/runs/translators/" --run-dir "$work/runs/tr-$genre" --max-seconds-per-track 120 \
    --eval-every 250 --save-every 250 --log-every 50 --quiet --force
done
wait

unset GENRESHIFT_REGISTRY
python "$repo/scripts/package_weights.py" --version v2 --vocoder fast="$work/runs/vocoder-fast-v2b/best.pt" \
  --refine-iters 8 --mel-iters 4 \
  --translator rock="$work/runs/translators/rock.pt" \
  --translator orchestral="$work/runs/translators/orchestral.pt" \
  --translator electronic="$work/runs/translators/electronic.pt" \
  --default-vocoder "${DEFAULT_VOCODER:-fast}"
python "$repo/benchmarks/quality.py" --corpus "$work/corpus" --json "$work/quality.json"
