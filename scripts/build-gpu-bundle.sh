#!/usr/bin/env bash
# Builds the CUDA binaries used by scripts/gpu-check.sh into .gpu/ (git-ignored), stripped and
# gzipped to stay under the device tool's 64 MiB carry limit, plus the small real dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recformer-target}"
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
DATA="${RECFORMER_DATA_DIR:-../shared/data}"
mkdir -p .gpu/data
cargo build --release --features cuda --bin recformer
cargo bench --features cuda --bench throughput --no-run 2>&1 | tee /tmp/bench-build.log
cargo test --release -p recformer-model --features cuda --test backend_parity --no-run 2>&1 | tee /tmp/test-build.log
bench=$(grep -o '(/[^)]*throughput-[0-9a-f]*)' /tmp/bench-build.log | tr -d '()' | tail -1)
parity=$(grep -o '(/[^)]*backend_parity-[0-9a-f]*)' /tmp/test-build.log | tr -d '()' | tail -1)
cp "$CARGO_TARGET_DIR/release/recformer" .gpu/recformer
cp "$bench" .gpu/throughput
cp "$parity" .gpu/backend_parity
for b in recformer throughput backend_parity; do strip .gpu/$b; gzip -f .gpu/$b; done
cp -r "$DATA/scientific-recformer" .gpu/data/
ls -la .gpu .gpu/data
