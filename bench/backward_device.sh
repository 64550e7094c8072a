#!/usr/bin/env bash
# One call on the GPU machine (device tool; carry .device, or run from the
# folder bench/stage_device.sh made): builds the MLIR-free moe-run there
# (CUDA, no MLIR), checks the training-step artifacts of
# bench/compile_backward_artifacts.sh against the reference backward
# (moe-run --backward --check), then times the full-size training steps
# (--backward --repeat, with --profile: each kernel's share). About 4-5
# minutes; every command has a time limit, and after two timeouts (a hung
# kernel) the remaining checks are skipped, so that one hang cannot eat the
# budget. Logs go to $OUT (or ./device-out). REPEAT (default 5) runs per
# timing; CHECK_ONLY=1 skips the timing; TIME="sm_90a:qwen3_30b_a3b ..."
# overrides what is timed; FULL=1 also checks the presets on sm_90.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
art=$root/.device/backward
out=${OUT:-$root/device-out}
repeat=${REPEAT:-5}
logs=$out/logs
mkdir -p "$logs"
exec > >(tee "$out/backward_device.log") 2>&1

echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
cmake -S "$root/tools/moe-run" -B /tmp/moe-run-build -G Ninja -DCMAKE_BUILD_TYPE=Release > /tmp/cmake.log || { cat /tmp/cmake.log; exit 1; }
ninja -C /tmp/moe-run-build > /tmp/ninja.log || { tail -40 /tmp/ninja.log; exit 1; }
run=/tmp/moe-run-build/moe-run

echo "== correctness: training steps against the reference backward ($(date -u +%H:%M:%S))"
failures=0 timeouts=0
for a in "$art"/sm_90a/check-*.so "$art"/sm_90/check-*.so; do
  [ -e "$a" ] || continue
  chip=$(basename "$(dirname "$a")")
  name=$chip-$(basename "$a" .so)
  # The presets at 300 tokens: the reference's naive double loops take a
  # while; sm_90 differs from sm_90a only in the forward GEMMs (the
  # backward's are mma.sync on both), so it checks them with FULL=1 only.
  limit=60
  case $name in
    sm_90-*qwen3*|sm_90-*olmoe*) [ "${FULL:-0}" = 1 ] || continue; limit=180 ;;
    *qwen3*|*olmoe*) limit=180 ;;
  esac
  if [ "$timeouts" -ge 2 ]; then
    echo "$name: SKIPPED (two timeouts before)"; failures=$((failures + 1)); continue
  fi
  timeout "$limit" "$run" "$a" --backward --check --seed 1 > "$logs/$name.log" 2>&1
  rc=$?
  if [ $rc = 0 ]; then
    echo "$name: ok: $(grep -oE '\((dx|dw_gate|dw1|dw2)\): relative error [^ ]*' "$logs/$name.log" | sed 's/: relative error / /' | tr '\n' ' ')"
  else
    failures=$((failures + 1))
    [ $rc = 124 ] && timeouts=$((timeouts + 1))
    echo "$name: FAILED (rc $rc)"; tail -12 "$logs/$name.log"
  fi
done
echo "correctness failures: $failures"
[ "${CHECK_ONLY:-0}" = 1 ] && exit $((failures > 0))

echo "== timing: full-size training steps, median of $repeat (CUDA events), then each kernel's share ($(date -u +%H:%M:%S))"
for item in ${TIME:-sm_90a:qwen3_30b_a3b sm_90a:olmoe sm_90a:mixtral sm_90:qwen3_30b_a3b}; do
  chip=${item%%:*} preset=${item#*:}
  a=$art/$chip/time-$preset.so
  [ -e "$a" ] || continue
  name=$chip-time-$preset
  timeout 150 "$run" "$a" --backward --repeat "$repeat" --profile > "$logs/$name.log" 2>&1
  echo "-- $name (rc $?): $(grep -E '^time|^memory|error' "$logs/$name.log" | tr '\n' ' ')"
  sed -n '/^profile/,$p' "$logs/$name.log" | head -16
done
echo "== done ($(date -u +%H:%M:%S)), correctness failures: $failures"
exit $((failures > 0))
