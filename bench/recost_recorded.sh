#!/usr/bin/env bash
# Rewrites, with this build's cost model, the --report-cost JSON of every
# artifact a recorded H200 run measured, so that bench/calibrate_cost_model.py
# can refit the device table to recorded profiles after the model changed
# (no GPU: report only, nothing is compiled to code).
#   bench/recost_recorded.sh OUT_DIR
# Names as the profiles of bench/logs/ call the runs: fwd-PRESET and
# time-PRESET (the forward; time-PRESET-sm_90 for cuda:sm_90),
# sm_90a-time-PRESET (the training step as 14:25 ran it, no budget: gate_up
# recomputed), train-PRESET-SCHEDULE-BUDGET (SCHEDULE all or chunk1; BUDGET
# min or max, the bytes of the recorded --report-memory of that artifact).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BUILD_DIR:-$root/build}/bin
# RECORDED: the run whose --report-memory budgets to reuse (default 16:26).
recorded=${RECORDED:-$root/bench/logs/recompute-2026-11-29-1626/costs}
out=${1:?usage: recost_recorded.sh OUT_DIR}
mkdir -p "$out"
report() { # NAME FLAGS...
  local name=$1; shift
  "$bin/moe-compile" --target=cuda:sm_90a --report-cost="$out/$name.json" "$@" 2>/dev/null
}
for preset in mixtral qwen3_30b_a3b olmoe; do
  # The mma.sync forward of bench/logs/profile-h200-sm90-forward-*.json.
  "$bin/moe-compile" --target=cuda:sm_90 --layer "$preset" \
    --report-cost="$out/time-$preset-sm_90.json" 2>/dev/null
  report "fwd-$preset" --layer "$preset"
  report "time-$preset" --layer "$preset"
  report "sm_90a-time-$preset" --layer "$preset" --backward
  for schedule in all chunk1; do
    flags=()
    [ "$schedule" = chunk1 ] && flags=(--experts-per-chunk=1)
    for budget in min max; do
      name=train-$preset-$schedule-$budget
      bytes=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['recomputation']['budget_bytes'])" \
        "$recorded/$name.memory.json")
      report "$name" --layer "$preset" --backward "${flags[@]}" --memory-budget="$bytes"
    done
  done
done
echo "wrote $(ls "$out" | wc -l) cost reports to $out"
