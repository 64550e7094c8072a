# Sourced by the device scripts that build moe-run on the GPU machine (no
# MLIR there): what it is built from, and how.
#
# copy_moe_run_sources ROOT DEST SCRIPT: the MLIR-free runtime and moe-run's
#   sources from the checkout ROOT into DEST, with bench/SCRIPT and this file
#   in DEST/bench, so that DEST (carried to the GPU machine) runs SCRIPT.
# build_moe_run DIR BUILD: builds DIR/tools/moe-run into BUILD (BUILD/moe-run);
#   on failure prints the end of its log and returns 1.
# find_ncu: the path of Nsight Compute's ncu there, or nothing.

copy_moe_run_sources() {
  local root=$1 dest=$2 script=$3
  mkdir -p "$dest/lib/Target" "$dest/tools" "$dest/bench"
  cp -r "$root/runtime" "$root/include" "$dest/"
  cp "$root/bench/$script" "$root/bench/moe_run_sources.sh" "$dest/bench/"
  cp -r "$root/lib/Layer" "$root/lib/Reference" "$dest/lib/"
  cp "$root/lib/Target/CudaChip.h" "$root/lib/Target/CudaChip.cpp" \
    "$dest/lib/Target/"
  cp -r "$root/tools/moe-run" "$dest/tools/"
}

find_ncu() {
  command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null ||
    ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1
}

build_moe_run() {
  local dir=$1 build=$2
  cmake -S "$dir/tools/moe-run" -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release > "$build.cmake.log" 2>&1 ||
    { tail -30 "$build.cmake.log"; return 1; }
  ninja -C "$build" -j "$(nproc)" > "$build.ninja.log" 2>&1 ||
    { tail -30 "$build.ninja.log"; return 1; }
}

# run_checks RUN DIR LOGS: every DIR/check-*.so against the CPU reference
#   (RUN --check --seed 3: outputs poisoned; its inputs from DIR/NAME.inputs
#   when there is one), its log in LOGS, a line each
#   (the relative errors, or FAILED and the log's end); adds the failures to
#   $failures. CHECK_TIMEOUT (default 240 s: mixtral's reference backward
#   holds its weights in double) bounds each.
# run_timings RUN DIR LOGS: every DIR/time-*.so, median of REPEAT (default
#   10) with the per-kernel profile, its log in LOGS; prints its time and
#   memory lines and its PROFILE_LINES (default 8) costliest kernels; adds
#   the failures to $failures.

run_checks() {
  local run=$1 dir=$2 logs=$3 a n
  for a in "$dir"/check-*.so; do
    [ -e "$a" ] || continue
    n=$(basename "$a" .so)
    # DIR/NAME.inputs: the check's own inputs (moe-run --inputs).
    local inputs=()
    [ -d "$dir/$n.inputs" ] && inputs=(--inputs "$dir/$n.inputs")
    if timeout "${CHECK_TIMEOUT:-240}" "$run" "$a" --check --seed 3 "${inputs[@]}" > "$logs/$n.log" 2>&1; then
      echo "$n: $(grep -E 'relative error' "$logs/$n.log" | sed 's/^ *//' | cut -c1-80 | tr '\n' ';')"
    else
      failures=$((failures + 1)); echo "$n: FAILED"; tail -5 "$logs/$n.log"
    fi
  done
}

# routing_share LOG: from a moe-run --repeat N --profile log, the routing
#   kernels' time (the router's scores and top-k, the routing plan; issue #10
#   wants them under 3% of the layer) against the median, e.g.
#   "routing: 0.074 ms, 3.1% of the median (5 kernels)".
routing_share() {
  awk '/^time: median/ { median = $3 }
       /^ +[0-9.]+ +[0-9.]+% / && $NF ~ /^moek_(route|route_scores|route_scores_top_k|rank_assignments_.*|exclusive_scan|assignment_rows|row_assignments.*)$/ {
         ms += $1; n++ }
       END { if (median > 0) printf "routing: %.3f ms, %.1f%% of the median (%d kernels)\n", ms, 100 * ms / median, n }' "$1"
}

run_timings() {
  local run=$1 dir=$2 logs=$3 a n
  for a in "$dir"/time-*.so; do
    [ -e "$a" ] || continue # none: checks only
    n=$(basename "$a" .so)
    timeout 120 "$run" "$a" --repeat "${REPEAT:-10}" --profile > "$logs/$n.log" 2>&1 ||
      failures=$((failures + 1))
    echo "-- $n: $(grep -E '^time:|^device memory' "$logs/$n.log" | tr '\n' ' ')"
    grep -E '^ +[0-9.]+ +[0-9.]+% ' "$logs/$n.log" | head -"${PROFILE_LINES:-8}"
    case $n in time-fwd-*) echo "   $(routing_share "$logs/$n.log")" ;; esac
  done
}

# start_clock_sampler FILE: nvidia-smi samples the GPU every 50 ms into FILE
#   (local date and time, SM clock MHz, power W, active clock-event reasons as
#   a bit mask; bench/clock_phases.py reads it) until `kill "$sampler"`.
start_clock_sampler() {
  nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_event_reasons.active \
    --format=csv,noheader,nounits -lms 50 > "$1" &
  sampler=$!
}
