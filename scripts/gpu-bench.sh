#!/usr/bin/env bash
# Issue 12's GPU table in one run, on a CUDA machine without Rust (nothing is built there):
#
#   here:  CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda --bin recformer
#          mkdir -p .gpu/data && cp "$CARGO_TARGET_DIR"/release/recformer .gpu/ && gzip -f .gpu/recformer
#          cp -r ../shared/data/scientific-recformer .gpu/data/
#          # optional, for the Scientific rows: a model directory of at most ~50 MB, e.g. one
#          # converted with `recformer init --max-tokens 64` from a small BERT, as .gpu/model
#   there: bash scripts/gpu-bench.sh            (table and log under $OUT, default ./gpu-out)
#
# Rows: `recformer bench` (random weights; its training step is the in-batch contrastive step:
# forward, cosine loss, backward, AdamW; no MLM passes) for mini at 80 x 512 and base at
# 16 x 1024, each in f32 and in bf16 (`--precision bf16`: bf16 products and activations, f32
# parameters, LayerNorm, softmax and loss), with the peak GPU memory sampled by nvidia-smi every 100 ms; with .gpu/model, one
# Scientific finetuning epoch (wall time of a 1-epoch run, item encodings included), item
# encoding (items/s, as `encode-items` prints) and full-ranking evaluation of the test users.
# Nothing here estimates: a row that cannot run says why.
set -uo pipefail
OUT="${OUT:-gpu-out}"
G="${G:-.gpu}"
mkdir -p "$OUT"
[ -x "$G/recformer" ] || { gunzip -kf "$G/recformer.gz" && chmod +x "$G/recformer"; } || exit 1
R="$G/recformer"
DATA="$G/data/scientific-recformer"

# Runs "$@" while sampling GPU memory; prints the command's output, then "peak_mib=N".
with_peak() {
  local samples="$OUT/.mem.$$"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$samples" 2>/dev/null &
  local sampler=$!
  "$@"
  local rc=$?
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
  echo "peak_mib=$(sort -n "$samples" | tail -1)"
  rm -f "$samples"
  return $rc
}

# `recformer bench` row -> "train step ms" (8th column of its markdown row).
train_ms() { grep '^| cuda' | awk -F'|' '{gsub(/ /, "", $8); print $8}'; }

table="$OUT/gpu-bench.md"
{
  echo "| work | result | peak GPU MiB |"
  echo "|---|---|---|"
} > "$table"
row() { echo "| $1 | $2 | $3 |" >> "$table"; }

{
  echo "=== machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  for shape in "mini 80 512 f32" "mini 80 512 bf16" "base 16 1024 f32" "base 16 1024 bf16"; do
    set -- $shape
    echo; echo "=== bench $1 $2 x $3 $4"
    out=$(with_peak timeout 150 "$R" bench --device cuda --preset "$1" --batch "$2" --tokens "$3" --precision "$4" \
      --steps 5 --warmup 2 2>&1)
    echo "$out"
    ms=$(echo "$out" | train_ms)
    peak=$(echo "$out" | sed -n 's/^peak_mib=//p')
    if [ -n "$ms" ]; then
      row "$1 training step, $2 x $3, $4" "$ms ms = $(awk -v b="$2" -v m="$ms" 'BEGIN{printf "%.0f", b*1000/m}') sequences/s" "$peak"
    else
      row "$1 training step, $2 x $3, $4" "did not run (see gpu-bench.log)" "$peak"
    fi
  done
  if [ -d "$G/model" ] && [ -d "$DATA" ]; then
    echo; echo "=== finetuning, one epoch on Scientific"
    start=$(date +%s.%N)
    out=$(with_peak timeout 600 "$R" finetune --model "$G/model" --data "$DATA" --out "$OUT/ft" --device cuda \
      --set num_train_epochs=1 --set initial_test_eval=false --quiet 2>&1)
    rc=$?
    secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
    echo "$out"
    peak=$(echo "$out" | sed -n 's/^peak_mib=//p')
    [ $rc -eq 0 ] && row "Scientific finetuning, 1 epoch (whole run: encodings, val, test)" "$secs s" "$peak" \
      || row "Scientific finetuning, 1 epoch" "failed (rc $rc, see gpu-bench.log)" "$peak"
    echo; echo "=== item encoding"
    out=$(with_peak timeout 300 "$R" encode-items --model "$G/model" --data "$DATA" --out "$OUT/items.safetensors" \
      --device cuda --batch-size 256 --quiet 2>&1)
    echo "$out"
    rate=$(echo "$out" | sed -n 's/.*(\([0-9]*\) items\/s).*/\1/p')
    row "item encoding (all Scientific items)" "${rate:-failed} items/s" "$(echo "$out" | sed -n 's/^peak_mib=//p')"
    echo; echo "=== full-ranking evaluation (test split)"
    start=$(date +%s.%N)
    out=$(with_peak timeout 300 "$R" evaluate --model "$G/model" --data "$DATA" --split test --zero-shot \
      --device cuda --batch-size 256 --quiet 2>&1)
    secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
    echo "$out"
    users=$(echo "$out" | sed -n 's/.*"users":\([0-9]*\).*/\1/p')
    row "full ranking, test users (process wall, item encoding included)" \
      "${users:-?} users in $secs s" "$(echo "$out" | sed -n 's/^peak_mib=//p')"
  else
    row "Scientific rows" "skipped: no $G/model or $DATA" "-"
  fi
  echo; echo "=== table"
  cat "$table"
} 2>&1 | tee "$OUT/gpu-bench.log"
