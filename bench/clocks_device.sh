#!/usr/bin/env bash
# One call on the GPU machine (device tool): the SM clock, power and clock-event reasons (the
# driver's throttling) while each of these runs in steady state, sampled every 50 ms by nvidia-smi:
# MoE-MLIR's forwards (.device/ab/NAME.so, each --repeat REPEAT, default 300) and cuBLAS on the same
# GEMM shapes (bench/dense_ceiling.py). Says whether a kernel runs below the card's clock-bound rate
# because of the power cap, and what rate cuBLAS reaches on the same shapes at the same time.
#   OUT=$OUT bash bench/clocks_device.sh NAME...   (carry .device/ab)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/device-out}
mkdir -p "$out"
exec > >(tee "$out/clocks_device.log") 2>&1
echo "== device: $(nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%MZ)"
source "$root/bench/moe_run_sources.sh"
build=/tmp/moe-run-build-clocks
build_moe_run "$root" "$build" || exit 1
samples=$out/clock_samples.csv
start_clock_sampler "$samples"
phases=$out/phases.txt
: > "$phases"
for name in "$@"; do
  start=$(date +%s.%N)
  result=$("$build/moe-run" "$root/.device/ab/$name.so" --repeat "${REPEAT:-300}" 2>&1 | grep -E '^time|error')
  echo "$name $start $(date +%s.%N)" >> "$phases"
  echo "-- $name: $result"
done
python3 "$root/bench/dense_ceiling.py" "${SECONDS_EACH:-3}" | tee "$out/dense.jsonl"
cat "$out/dense.jsonl" >> "$phases"
kill "$sampler"
python3 "$root/bench/clock_phases.py" "$samples" "$phases"
echo "== done ($(date -u +%H:%M:%S))"
