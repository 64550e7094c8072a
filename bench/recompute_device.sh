#!/usr/bin/env bash
# One call on the GPU machine (device tool, carry .device) for issue #12:
# builds the MLIR-free runtime and moe-run there (as bench/run_device.sh
# does), then for the artifacts of bench/compile_recompute_artifacts.sh
#   1. checks the training step at every budget against the CPU reference
#      backward (check-train-*.so: full H, F, E, k, a few tokens);
#   2. times the full-size training step at every budget (train-*.so):
#      median of REPEAT runs, the device memory the call held (moe-run's
#      "device memory: high water" line) and the per-kernel profile with
#      the cost model's prediction beside it;
#   3. profiles the forward of each preset (fwd-*.so), for the calibration.
# Logs: $OUT/recompute-logs.tgz, of recompute/NAME.log (one per artifact,
# what bench/calibrate_cost_model.py collect and bench/recompute_results.py
# read), and $OUT/recompute_device.log. The mid budgets are checked but not timed:
# with one layer there are two placements, and mid gets min's. REPEAT
# (default 3), SKIP_CHECK=1, SKIP_TIMING=1, ONLY (a name pattern, e.g.
# '*qwen3*'), TIMING_FIRST=1, DEADLINE and RUN_TIMEOUT (below) bound the
# device time.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
art=$root/.device/artifacts
out=${OUT:-$root/device-out}
repeat=${REPEAT:-3}
logs=$out/recompute
mkdir -p "$logs"
exec > >(tee "$out/recompute_device.log") 2>&1

echo "== device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1), $(date -u +%Y-%m-%dT%H:%MZ)"
# A build folder of its own: another checkout's moe-run may use /tmp/moe-run-build.
build=${MOE_RUN_BUILD:-/tmp/moe-run-build-recompute}
cmake -S "$root/tools/moe-run" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release > /tmp/cmake-recompute.log || { cat /tmp/cmake-recompute.log; exit 1; }
ninja -C "$build" > /tmp/ninja-recompute.log || { cat /tmp/ninja-recompute.log; exit 1; }
run=$build/moe-run

# The device tool brings back 8 files only: the per-artifact logs (what
# calibrate_cost_model.py collect reads) travel as one archive, made on any
# exit — also when a time limit interrupts the call (timeout -s INT/TERM),
# which once left them loose and lost.
pack_logs() {
  trap - EXIT INT TERM
  local running
  running=$(jobs -p)
  [ -n "$running" ] && kill $running 2> /dev/null
  [ -d "$logs" ] && tar czf "$out/recompute-logs.tgz" -C "$out" recompute && rm -rf "$logs"
}
trap pack_logs EXIT
trap 'echo "== interrupted ($(date -u +%H:%M:%S)): the logs so far are packed"; exit 130' INT TERM

failures=0
start=$SECONDS
# DEADLINE (seconds from here; default none): what is left when it passes is
# skipped and said so, so that one call of the device tool ends in its limit
# with the logs of what ran. RUN_TIMEOUT bounds each moe-run (default 180).
past_deadline() {
  [ -n "${DEADLINE:-}" ] && [ $((SECONDS - start)) -ge "$DEADLINE" ]
}
run_bounded() { timeout --signal=KILL "${RUN_TIMEOUT:-180}" "$run" "$@"; }

check_one() { # ARTIFACT: one line, PASSED or FAILED (with the log's end)
  local a=$1 name
  name=$(basename "$a" .so)
  if run_bounded "$a" --check --seed 1 > "$logs/$name.log" 2>&1; then
    echo "$name: CHECK PASSED; $(grep -E '^device memory' "$logs/$name.log")"
  else
    echo "$name: FAILED"; tail -12 "$logs/$name.log"
  fi
}

check_all() {
  echo "== correctness: the training step at each budget vs the reference backward ($(date -u +%H:%M:%S))"
  # The small presets first: mixtral's CPU reference takes longest. CHECK_JOBS
  # (default 1) checks run at once: the time is the CPU reference's, and
  # each process's device-memory high water is its own.
  local a name results=$out/checks.txt
  : > "$results"
  for a in $(ls "$art"/check-train-*.so 2>/dev/null | grep -v mixtral) \
           $(ls "$art"/check-train-mixtral-*.so 2>/dev/null); do
    name=$(basename "$a" .so)
    # shellcheck disable=SC2053
    [[ $name == ${ONLY:-*} ]] || continue
    if past_deadline; then echo "$name: SKIPPED (deadline)" >> "$results"; continue; fi
    # mixtral's reference holds its 1.4 G-parameter weights and gradients in
    # double, tens of GB a process: MIXTRAL_CHECK_JOBS (default 2) of them at
    # once (five or six at once swapped and timed out, 2026-11-29).
    local limit=${CHECK_JOBS:-1}
    [[ $name == *mixtral* ]] && limit=$(( limit < ${MIXTRAL_CHECK_JOBS:-2} ? limit : ${MIXTRAL_CHECK_JOBS:-2} ))
    while [ "$(jobs -rp | wc -l)" -ge "$limit" ]; do wait -n; done
    check_one "$a" >> "$results" &
  done
  wait
  cat "$results"
  failures=$((failures + $(grep -c ': FAILED' "$results")))
  echo "correctness: $(grep -c 'CHECK PASSED' "$results") passed, $(grep -c ': FAILED' "$results") failed, $(grep -c SKIPPED "$results") skipped"
}

time_all() {
  echo "== timing: full-size training steps per budget, forwards ($(date -u +%H:%M:%S))"
  # The forwards and each preset's save-everything step first, so that a
  # deadline cuts the other budgets rather than a preset.
  for a in "$art"/fwd-*.so "$art"/train-*-all-max.so \
           $(ls "$art"/train-*.so | grep -v -- '-all-max.so'); do
    [ -e "$a" ] || continue
    name=$(basename "$a" .so)
    case "$name" in *-mid) continue ;; esac
    # shellcheck disable=SC2053
    [[ $name == ${ONLY:-*} ]] || continue
    if past_deadline; then echo "$name: SKIPPED (deadline)"; continue; fi
    run_bounded "$a" --repeat "$repeat" --profile > "$logs/$name.log" 2>&1 ||
      { failures=$((failures + 1)); echo "$name: FAILED"; tail -5 "$logs/$name.log"; continue; }
    echo "-- $name: $(grep -E '^time|^device memory|^prediction' "$logs/$name.log" | tr '\n' ' ')"
  done
}

# TIMING_FIRST=1: the timing (what the cost model is judged by) before the
# checks, when one call may not finish both.
if [ "${TIMING_FIRST:-0}" = 1 ]; then
  [ "${SKIP_TIMING:-0}" = 1 ] || time_all
  [ "${SKIP_CHECK:-0}" = 1 ] || check_all
else
  [ "${SKIP_CHECK:-0}" = 1 ] || check_all
  [ "${SKIP_TIMING:-0}" = 1 ] || time_all
fi
echo "== done ($(date -u +%H:%M:%S)), failures: $failures"
exit $((failures > 0))
