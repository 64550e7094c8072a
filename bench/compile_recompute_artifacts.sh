#!/usr/bin/env bash
# Compiles, here (where MLIR is), what bench/recompute_device.sh runs on the
# GPU machine: the training step of mixtral, qwen3_30b_a3b and olmoe at
# several memory budgets (issue #12), into .device/artifacts/:
#   train-PRESET-SCHEDULE-BUDGET.so  full size, for step time, device memory
#                            and --profile. SCHEDULE is `all` (CUDA's default:
#                            all experts per launch) or `chunk1` (one expert
#                            per chunk: the backward's h/dh rows shrink from
#                            T*k to T, so saving h costs memory and the budget
#                            decides); BUDGET is min (the least planned peak
#                            any placement reaches), mid (half way) and max
#                            (the save-everything peak). With all experts per
#                            launch saving h costs no peak (dh overwrites the
#                            saved h, the buffer the recompute would need
#                            anyway), min == max and only max is compiled.
#   check-train-PRESET-SCHEDULE-BUDGET.so  the same at a few tokens (full H,
#                            F, E, k) for --check against the reference
#   fwd-PRESET.so            the forward, for the cost model's calibration
# and, next to them in .device/costs/, each artifact's --report-cost and
# --report-memory JSON (the predictions bench/calibrate_cost_model.py fits
# against and bench/recompute_results.py prints beside the measurements).
# TARGET (default cuda:sm_90a), PRESETS (default all three), SCHEDULES
# (default "all chunk1"), CHECK_TOKENS (default 64) and MIXTRAL_CHECK_TOKENS
# (default 16: its CPU reference is the slowest) change
# what is compiled. Keeps other artifacts in .device/artifacts unless
# CLEAN=1; FULL_MID=0 skips the full-size mid budgets (not timed), FULL_ONLY=1
# the small check-train-* artifacts. Takes
# about 15 minutes on the 2-core build machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BUILD_DIR:-$root/build}/bin
out=$root/.device/artifacts
costs=$root/.device/costs
target=${TARGET:-cuda:sm_90a}
[ "${CLEAN:-0}" = 1 ] && rm -rf "$out" "$costs"
mkdir -p "$out" "$costs"

compile() { # NAME SPEC [FLAGS]
  local name=$1 spec=$2; shift 2
  "$bin/moe-compile" --layer "$spec" --target="$target" -o "$out/$name.so" \
    --report-cost="$costs/$name.json" --report-memory="$costs/$name.memory.json" "$@"
  echo "compiled $name: $spec $*"
}

# The least planned peak a placement reaches: moe-compile names it when the
# budget is below it (exit 2), in "give --memory-budget=N or more".
least_peak() { # SPEC FLAGS...
  local spec=$1; shift
  { "$bin/moe-compile" --layer "$spec" --target="$target" --backward "$@" \
      --memory-budget=1 --report-memory=/dev/null 2>&1 || true; } |
    sed -n 's/.*give --memory-budget=\([0-9]*\) or more.*/\1/p' | head -1
}
# The save-everything peak: the planned peak under a budget of 100%.
save_all_peak() { # SPEC FLAGS...
  local spec=$1 report
  shift
  report=$(mktemp)
  "$bin/moe-compile" --layer "$spec" --target="$target" --backward "$@" \
    --memory-budget=100% --report-memory="$report" 2>/dev/null
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['recomputation']['save_all_peak_bytes'])" "$report"
  rm -f "$report"
}

for preset in ${PRESETS:-mixtral qwen3_30b_a3b olmoe}; do
  compile "fwd-$preset" "$preset"
  tokens=${CHECK_TOKENS:-64}
  [ "$preset" = mixtral ] && tokens=${MIXTRAL_CHECK_TOKENS:-16}
  for schedule in ${SCHEDULES:-all chunk1}; do
    flags=()
    [ "$schedule" = chunk1 ] && flags=(--experts-per-chunk=1)
    specs=("$preset" "$preset,tokens=$tokens")
    # FULL_ONLY=1: the full-size artifacts only (timing, no --check).
    [ "${FULL_ONLY:-0}" = 1 ] && specs=("$preset")
    for spec in "${specs[@]}"; do
      least=$(least_peak "$spec" "${flags[@]}")
      all=$(save_all_peak "$spec" "${flags[@]}")
      [ -n "$least" ] && [ -n "$all" ] || { echo "no peaks for $spec"; exit 1; }
      prefix=train-$preset-$schedule
      [ "$spec" != "$preset" ] && prefix=check-train-$preset-$schedule
      echo "$spec ($schedule): least planned peak $least bytes, save everything $all bytes"
      if [ "$least" != "$all" ]; then
        compile "$prefix-min" "$spec" --backward "${flags[@]}" --memory-budget="$least" 2>/dev/null
        # The device script checks the mid budgets but does not time them:
        # FULL_MID=0 skips compiling the full-size ones.
        if [ "$spec" != "$preset" ] || [ "${FULL_MID:-1}" = 1 ]; then
          compile "$prefix-mid" "$spec" --backward "${flags[@]}" --memory-budget=$(( (least + all) / 2 )) 2>/dev/null
        fi
      fi
      compile "$prefix-max" "$spec" --backward "${flags[@]}" --memory-budget="$all" 2>/dev/null
    done
  done
done
du -sh "$out" "$costs"
