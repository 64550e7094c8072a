#!/usr/bin/env bash
# One call on the GPU machine (device tool) for issue #10: SonicMoE's forward and MoE-MLIR's, same
# call, same GPU. Carry .device/sonic, made here by `bench/sonic_device.sh pack`:
#   site.tar.xz   SonicMoE and its CUTLASS DSL (../shared/bench/pack_sonic.sh; about 55 MB)
#   art/*.so      MoE-MLIR's forward artifacts (bench/compile_device_artifacts.sh's time-*.so)
#   torch_baselines.py, sonic_forward.py
# The device tool carries at most 64 MiB: the tracked tree (about 9 MB, most of it bench/logs)
# and .device/sonic (56 MB) are over it, so move bench/logs aside for the call.
# Then on the GPU machine: `bash bench/sonic_device.sh run` (logs in $OUT/sonic_device.log;
# ALTERNATE=N times each preset N times, SonicMoE and MoE-MLIR in turn). The
# first SonicMoE call JIT-compiles its kernels (minutes): SONIC_TIMEOUT (default 420 s) bounds it.
# MoE-MLIR's runs come before and after SonicMoE's, in the same call, with the GPU's clocks.
# REPEAT=N (default 20) times N forwards a run on each side (SonicMoE's SONIC_ITERS): a few
# hundred hold the card at its power cap, where 20 time a burst. nvidia-smi samples the clocks
# every 50 ms throughout; bench/clock_phases.py prints each alternating run's clock and power.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.device/sonic
if [ "${1:-}" = pack ]; then
  rm -rf "$dir" && mkdir -p "$dir/art"
  bash "$root/../shared/bench/pack_sonic.sh" "$dir"
  cp "$root/../shared/bench/torch_baselines.py" "$root/bench/sonic_forward.py" "$dir/"
  cp "$root"/.device/artifacts/time-*.so "$dir/art/"
  du -sh "$dir"
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 pack | run" >&2; exit 2; }
out=${OUT:-$root/device-out}
mkdir -p "$out"
exec > >(tee "$out/sonic_device.log") 2>&1
echo "== $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%MZ)"
mkdir -p /tmp/site && xz -dc "$dir/site.tar.xz" | tar -C /tmp/site -xf -
export PYTHONPATH=/tmp/site:/tmp/site/nvidia_cutlass_dsl/python_packages
build=/tmp/moe-run-build-sonic
cmake -S "$root/tools/moe-run" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release > /tmp/cmake-sonic.log &&
  ninja -C "$build" > /tmp/ninja-sonic.log || { cat /tmp/cmake-sonic.log /tmp/ninja-sonic.log; exit 1; }
source "$root/bench/moe_run_sources.sh"
start_clock_sampler "$out/clock_samples.csv"
gpu_state() {
  echo "   GPU: $(nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader)"
}
# MoE-MLIR before and after SonicMoE: a difference between the two says
# how much the order (clocks, temperature) moves the comparison.
ours() {
  echo "== MoE-MLIR forward, median of 20 ($(date -u +%H:%M:%S))"
  gpu_state
  for a in "$dir"/art/time-*.so; do
    echo "-- $(basename "$a" .so): $("$build/moe-run" "$a" --repeat "${REPEAT:-20}" 2>&1 | grep -E '^time|error')"
  done
}
ours
echo "== SonicMoE forward ($(date -u +%H:%M:%S))"
gpu_state
# ALTERNATE=N: each preset N times, SonicMoE's run and MoE-MLIR's in turn.
if [ -n "${ALTERNATE:-}" ]; then
  export SONIC_ROUNDS=$ALTERNATE
  export OURS_COMMAND="$build/moe-run $dir/art/time-{config}.so --repeat ${REPEAT:-20}"
fi
SONIC_ITERS=${REPEAT:-10} timeout "${SONIC_TIMEOUT:-420}" python3 "$dir/sonic_forward.py" ${PRESETS:-qwen3_30b_a3b olmoe mixtral} 2>&1 |
  grep -v Warning
ours
gpu_state
kill "$sampler"
python3 "$root/bench/clock_phases.py" "$out/clock_samples.csv" "$out/sonic_device.log"
echo "== done ($(date -u +%H:%M:%S))"
