#!/usr/bin/env bash
# Compiles, here (where MLIR is), what bench/recompute_device.sh runs on the
# GPU machine: the training step of mixtral, qwen3_30b_a3b and olmoe at
# several memory budgets (issue #12), into .device/artifacts/:
#   train-PRESET-BUDGET.so   full size, for step time, device memory and
#                            --profile; BUDGET is min (the least planned peak
#                            any placement reaches), mid (half way) and max
#                            (the save-everything peak)
#   check-train-PRESET-BUDGET.so  the same at a few tokens (full H, F, E, k)
#                            for --check against the CPU reference backward
#   fwd-PRESET.so            the forward, for the cost model's calibration
# and, next to them in .device/costs/, each artifact's --report-cost and
# --report-memory JSON (the predictions bench/calibrate_cost_model.py fits
# against and bench/recompute_results.py prints beside the measurements).
# TARGET (default cuda:sm_90a), PRESETS (default all three) and CHECK_TOKENS
# (default 64; mixtral 16) change what is compiled. Keeps other artifacts in
# .device/artifacts unless CLEAN=1.
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
least_peak() { # SPEC
  "$bin/moe-compile" --layer "$1" --target="$target" --backward \
    --memory-budget=1 --report-memory=/dev/null 2>&1 |
    sed -n 's/.*give --memory-budget=\([0-9]*\) or more.*/\1/p' | head -1
}
# The save-everything peak: the planned peak under a budget of 100%.
save_all_peak() { # SPEC
  local report
  report=$(mktemp)
  "$bin/moe-compile" --layer "$1" --target="$target" --backward \
    --memory-budget=100% --report-memory="$report"
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['recomputation']['save_all_peak_bytes'])" "$report"
  rm -f "$report"
}

for preset in ${PRESETS:-mixtral qwen3_30b_a3b olmoe}; do
  compile "fwd-$preset" "$preset"
  tokens=${CHECK_TOKENS:-64}
  [ "$preset" = mixtral ] && tokens=16
  for spec in "$preset" "$preset,tokens=$tokens"; do
    least=$(least_peak "$spec")
    all=$(save_all_peak "$spec")
    [ -n "$least" ] && [ -n "$all" ] || { echo "no peaks for $spec"; exit 1; }
    mid=$(( (least + all) / 2 ))
    prefix=train-$preset
    [ "$spec" != "$preset" ] && prefix=check-train-$preset
    echo "$spec: least planned peak $least bytes, save everything $all bytes"
    compile "$prefix-min" "$spec" --backward --memory-budget="$least"
    compile "$prefix-mid" "$spec" --backward --memory-budget="$mid"
    compile "$prefix-max" "$spec" --backward --memory-budget="$all"
  done
done
du -sh "$out" "$costs"
