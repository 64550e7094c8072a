#!/usr/bin/env bash
# The 16-byte (quad-transposed) stores of the sm_90a GEMMs' 16-bit epilogues
# (emitQuadStores): checked and timed in one call of the device tool.
#   bash bench/quad_store_device.sh compile   here: .device/quad/*.so
#   bash .device/quad/../../bench/quad_store_device.sh run   there (carry .device/quad)
# compile: forward layers whose second GEMM stores bf16/f16 rows
# (--epilogue=gather_sum) at odd sizes (columns past N masked per lane),
# empty experts, many rows, f16, and two presets at 300 tokens; training
# steps whose weight gradients store bf16 dw (odd rows, many rows, empty
# experts, qwen3_30b_a3b at 64 tokens); the presets' forward (the compiler's
# epilogue) and training step (save-everything budget) at full size, timed.
# run: every check-* against the CPU reference (outputs poisoned), then
# every time-* (median of REPEAT, default 10, and the per-kernel profile).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.device/quad
if [ "${1:-}" = compile ]; then
  set -e
  bin=${BUILD_DIR:-$root/build}/bin
  rm -rf "$dir" && mkdir -p "$dir"
  compile() { # NAME SPEC [FLAGS]
    local name=$1 spec=$2; shift 2
    "$bin/moe-compile" --layer "$spec" --target=cuda:sm_90a -o "$dir/$name.so" "$@" 2>/dev/null
    echo "compiled $name: $spec $*"
  }
  compile check-fwd-odd tokens=77,hidden=200,ffn=136,experts=5,top_k=3,dtype=bf16 --epilogue=gather_sum
  compile check-fwd-empty tokens=8,hidden=64,ffn=32,experts=16,top_k=2,dtype=bf16 --epilogue=gather_sum
  compile check-fwd-many tokens=1000,hidden=136,ffn=200,experts=6,top_k=2,dtype=bf16 --epilogue=gather_sum
  # f16 (no spec dtype: an IR file)
  "$bin/moe-compile" "$root/test/Target/CUDA/Inputs/f16-layer.mlir" --target=cuda:sm_90a --epilogue=gather_sum -o "$dir/check-fwd-f16.so"
  compile check-fwd-qwen3 qwen3_30b_a3b,tokens=300 --epilogue=gather_sum
  compile check-fwd-olmoe olmoe,tokens=300 --epilogue=gather_sum
  compile check-train-odd tokens=37,hidden=64,ffn=48,experts=5,top_k=3,dtype=bf16 --backward
  compile check-train-many tokens=1000,hidden=136,ffn=200,experts=6,top_k=2,dtype=bf16 --backward --memory-budget=100%
  compile check-train-empty tokens=4,hidden=32,ffn=16,experts=16,top_k=1,dtype=bf16 --backward
  compile check-train-qwen3 qwen3_30b_a3b,tokens=64 --backward --memory-budget=100%
  for preset in mixtral qwen3_30b_a3b olmoe; do
    compile "time-fwd-$preset" "$preset"
    compile "time-train-$preset" "$preset" --backward --memory-budget=100%
  done
  du -sh "$dir"
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 compile | run" >&2; exit 2; }
out=${OUT:-$root/device-out}
mkdir -p "$out/quad"
exec > >(tee "$out/quad_store_device.log") 2>&1
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%MZ)"
source "$root/bench/moe_run_sources.sh"
build_moe_run "$root" /tmp/moe-run-build-quad || exit 1
run=/tmp/moe-run-build-quad/moe-run
failures=0
CHECK_TIMEOUT=120 run_checks "$run" "$dir" "$out/quad"
echo "== timing ($(date -u +%H:%M:%S))"
PROFILE_LINES=6 run_timings "$run" "$dir" "$out/quad"
echo "== done ($(date -u +%H:%M:%S)), failures: $failures"
