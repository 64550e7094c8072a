#!/usr/bin/env bash
# A/B timing of two builds' artifacts in one call of the device tool: for
# each NAME, .device/ab/A-NAME.so and .device/ab/B-NAME.so run alternately
# ROUNDS times (default 2; median of REPEAT, default 10, each, with the
# per-kernel profile), so that the card and its clocks are the same for both.
# SIDES="c1 c2 auto" rotates more than two builds the same way. Each round
# starts one side later than the one before (A B, B A, A B, ...): the second
# run of a pair is at a disadvantage (2026-12-02: qwen3_30b_a3b's forward
# 1.2% slower as B and 0.5% faster as A, the same artifacts), so use an even
# number of rounds.
#   OUT=$OUT A=noquad B=time bash bench/ab_device.sh NAME...   (carry .device/ab)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.device/ab
out=${OUT:-$root/device-out}
mkdir -p "$out/ab"
exec > >(tee "$out/ab_device.log") 2>&1
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%MZ)"
source "$root/bench/moe_run_sources.sh"
build=/tmp/moe-run-build-ab
build_moe_run "$root" "$build" || exit 1
read -r -a sides <<< "${SIDES:-$A $B}"
for round in $(seq "${ROUNDS:-2}"); do
  # This round's order: the sides rotated by round - 1.
  shift_by=$(((round - 1) % ${#sides[@]}))
  order=("${sides[@]:shift_by}" "${sides[@]:0:shift_by}")
  for name in "$@"; do
    for side in "${order[@]}"; do
      log=$out/ab/$side-$name-$round.log
      timeout 120 "$build/moe-run" "$dir/$side-$name.so" --repeat "${REPEAT:-10}" --profile > "$log" 2>&1
      echo "-- round $round $side-$name: $(grep -E '^time:' "$log")"
      grep -E '^ +[0-9.]+ +[0-9.]+% ' "$log" | head -"${PROFILE_LINES:-3}"
      echo "   $(routing_share "$log")"
    done
  done
done
echo "== done ($(date -u +%H:%M:%S)), GPU: $(nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader)"
