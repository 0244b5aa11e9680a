#!/usr/bin/env bash
# All GPU checks in one run, for a CUDA machine without Rust (binaries are built elsewhere).
#
# Build here (CPU machine):   scripts/build-gpu-bundle.sh   -> .gpu/ (stripped, gzipped binaries + data)
# Run there (repo root):      bash scripts/gpu-check.sh     -> results under $OUT (or ./gpu-out)
set -uo pipefail
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
G=.gpu
for f in "$G"/*.gz; do gunzip -kf "$f"; done
chmod +x "$G"/recformer "$G"/throughput "$G"/backend_parity 2>/dev/null
log() { echo; echo "=== $*"; }
{
  log "machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  log "CUDA parity: Cuda backend vs default CPU backend and PyTorch fixtures"
  (cd crates/recformer-model && timeout 180 ../../"$G"/backend_parity --test-threads 1)
  log "throughput (model FLOPs; H100 SXM dense bf16 peak ~989 TFLOP/s, tf32 ~495, fp32 ~67)"
  for args in "--preset mini --batch 64 --tokens 512" "--preset base --batch 16 --tokens 1024" "--preset base --batch 32 --tokens 1024"; do
    timeout 120 "$G"/throughput --device cuda $args --steps 5 --warmup 2
  done
  log "end-to-end demo on the real Scientific data (CUDA, time-boxed)"
  timeout 300 "$G"/recformer demo --data "$G"/data/scientific-recformer --device cuda --out "$OUT/demo" --quiet
} 2>&1 | tee "$OUT/gpu-check.log"
