#!/usr/bin/env bash
# The issue-11 recipe: RecFormer from a pretrained language model on a dataset in the official
# finetuning layout, on CPU, in one command.
#
#   scripts/reproduce-scientific.sh MINILM_DIR DATA_DIR OUT_DIR
#   e.g. scripts/reproduce-scientific.sh ../shared/data/minilm-l6-v2 \
#            ../shared/data/scientific-recformer runs/scientific
#
# Steps (only `recformer` commands and configs/finetune-item-matrix.toml):
#   1. init       convert the HF encoder (64 tokens per sequence, mean pooling)
#   2. finetune   the item-matrix variant: encoder frozen, item matrix trained; model selection
#                 on the validation split only; the test split is read once, at the end
#   3. evaluate   the final model on test with the cold-start split (paper Table 3)
#   4. baselines  popularity, random and the untouched encoder's newest-item text baseline
#   5. plot       OUT_DIR/ft/metrics.png
# The final model directory is OUT_DIR/final. Timings and peak memory of every step go to
# OUT_DIR/times.txt. Set RECFORMER to a built binary to skip the build.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 MINILM_DIR DATA_DIR OUT_DIR" >&2
    exit 2
fi
MINILM=$1
DATA=$2
OUT=$3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONFIG="$ROOT/configs/finetune-item-matrix.toml"

if [ -z "${RECFORMER:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
    RECFORMER="${CARGO_TARGET_DIR:-$ROOT/target}/release/recformer"
fi
[ -x "$RECFORMER" ] || { echo "no recformer binary at $RECFORMER" >&2; exit 1; }
mkdir -p "$OUT"
TIMES="$OUT/times.txt"
: > "$TIMES"

# step NAME COMMAND...: runs it, logs wall time and peak memory (GNU time when present)
step() {
    local name=$1
    shift
    echo "== $name: $*" >&2
    local t0=$SECONDS
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "$name wall_s=%e peak_kib=%M" -a -o "$TIMES" "$@"
    else
        "$@"
        echo "$name wall_s=$((SECONDS - t0))" >> "$TIMES"
    fi
}

step init "$RECFORMER" init --from "$MINILM" --out "$OUT/init" \
    --max-tokens 64 --pooler avg --quiet
step finetune "$RECFORMER" finetune --model "$OUT/init" --data "$DATA" --out "$OUT/ft" \
    --config "$CONFIG" --quiet > "$OUT/finetune.json"
rm -rf "$OUT/final"
cp -r "$OUT/ft/model" "$OUT/final"
step evaluate "$RECFORMER" evaluate --model "$OUT/final" --data "$DATA" --split test \
    --cold-start --batch-size 64 --quiet > "$OUT/test.json"
step baselines "$RECFORMER" baselines --data "$DATA" --model "$OUT/init" --cold-start --quiet \
    > "$OUT/baselines.json"
"$RECFORMER" plot "$OUT/ft" > /dev/null

echo "final model: $OUT/final" >&2
echo "test (with the cold-start split):" >&2
cat "$OUT/test.json" >&2
cat "$TIMES" >&2
