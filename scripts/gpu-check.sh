#!/usr/bin/env bash
# All GPU checks in one run, for a CUDA machine without Rust (the binary is built elsewhere):
#
#   here:  CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda --bin recformer
#          mkdir -p .gpu/data && cp target/release/recformer .gpu/ && strip .gpu/recformer && gzip .gpu/recformer
#          cp -r ../shared/data/scientific-recformer .gpu/data/
#   there: bash scripts/gpu-check.sh      (results and log under $OUT, default ./gpu-out)
#
# CUDA parity with the PyTorch fixtures is crates/recformer-model/tests/backend_parity.rs
# (`cargo test --release -p recformer-model --features cuda --test backend_parity`).
set -uo pipefail
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
G=.gpu
gunzip -kf "$G"/recformer.gz && chmod +x "$G"/recformer
log() { echo; echo "=== $*"; }
{
  log "machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  log "throughput (model FLOPs; H100 dense peaks: bf16 ~989 TFLOP/s, tf32 ~495, fp32 ~67)"
  timeout 90 "$G"/recformer bench --device cuda --preset mini --batch 64 --tokens 512 --steps 5 --warmup 2
  timeout 90 "$G"/recformer bench --device cuda --preset base --batch 16 --tokens 1024 --steps 5 --warmup 2
  timeout 60 "$G"/recformer bench --device cpu --preset mini --batch 8 --tokens 512 --steps 2 --warmup 1
  log "end-to-end demo on the real Scientific data (CUDA, time-boxed)"
  time timeout 240 "$G"/recformer demo --data "$G"/data/scientific-recformer --device cuda --out "$OUT/demo" --quiet
} 2>&1 | tee "$OUT/gpu-check.log"
