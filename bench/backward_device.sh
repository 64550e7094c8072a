#!/usr/bin/env bash
# One call on the GPU machine (device tool; carry .device, or run from the
# folder bench/stage_device.sh made): builds the MLIR-free moe-run there
# (CUDA, no MLIR), checks the training-step artifacts of
# bench/compile_backward_artifacts.sh against the reference backward
# (moe-run --backward --check), then times the full-size training steps
# (--backward --repeat, then --profile: each kernel's share). About 4 minutes;
# every command has a time limit so that one hang cannot eat the budget.
# Logs go to $OUT (or ./device-out). REPEAT (default 5) runs per timing;
# CHECK_ONLY=1 skips the timing; TIME_TARGETS (default "sm_90a sm_90") picks
# the targets timed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
art=$root/.device/backward
out=${OUT:-$root/device-out}
repeat=${REPEAT:-5}
mkdir -p "$out"
logs=$out/logs
mkdir -p "$logs"
exec > >(tee "$out/backward_device.log") 2>&1

echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%MZ)"
cmake -S "$root/tools/moe-run" -B /tmp/moe-run-build -G Ninja -DCMAKE_BUILD_TYPE=Release > /tmp/cmake.log || { cat /tmp/cmake.log; exit 1; }
ninja -C /tmp/moe-run-build > /tmp/ninja.log || { tail -40 /tmp/ninja.log; exit 1; }
run=/tmp/moe-run-build/moe-run

echo "== correctness: training steps against the reference backward ($(date -u +%H:%M:%S))"
failures=0
for chip in sm_90a sm_90; do
  for a in "$art/$chip"/check-*.so; do
    [ -e "$a" ] || continue
    name=$chip-$(basename "$a" .so)
    if timeout 150 "$run" "$a" --backward --check --seed 1 > "$logs/$name.log" 2>&1; then
      echo "$name: ok: $(grep -oE '\((dx|dw_gate|dw1|dw2)\): relative error [^ ]*' "$logs/$name.log" | sed 's/: relative error / /' | tr '\n' ' ')"
    else
      failures=$((failures + 1))
      echo "$name: FAILED"; tail -12 "$logs/$name.log"
    fi
  done
done
echo "correctness failures: $failures"
[ "${CHECK_ONLY:-0}" = 1 ] && exit $((failures > 0))

echo "== timing: full-size training steps, median of $repeat (CUDA events), then each kernel's share ($(date -u +%H:%M:%S))"
for chip in ${TIME_TARGETS:-sm_90a sm_90}; do
  for preset in qwen3_30b_a3b olmoe mixtral; do
    a=$art/$chip/time-$preset.so
    [ -e "$a" ] || continue
    name=$chip-time-$preset
    timeout 120 "$run" "$a" --backward --repeat "$repeat" --profile > "$logs/$name.log" 2>&1
    echo "-- $name (rc $?): $(grep -E '^time|^memory|error' "$logs/$name.log" | tr '\n' ' ')"
    sed -n '/^profile/,$p' "$logs/$name.log" | head -14
  done
  # sm_90 is for the comparison on qwen3 only when time is short.
  [ "${QUICK:-0}" = 1 ] && break
done
echo "== done ($(date -u +%H:%M:%S)), correctness failures: $failures"
exit $((failures > 0))
