#!/usr/bin/env bash
# One call on the GPU machine (device tool, carry .device/ab): Nsight Compute
# on mixtral's store GEMM, two builds side by side (.device/ab/old-fwd-mixtral.so
# and new-fwd-mixtral.so, made by bench/ab_device.sh's compile step), to find
# where a difference between them goes: speed of light, warp states, scheduler,
# memory, and per-instruction stall samples (SourceCounters, printed as SASS).
# Also the SASS of .device/ab/{old,new}-store.cubin when they are there.
# Logs in $OUT: store-ncu.log (summary), ncu-SIDE.txt, source-SIDE.csv.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.device/ab
out=${OUT:-$root/device-out}
mkdir -p "$out"
exec > >(tee "$out/store-ncu.log") 2>&1
echo "== $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%MZ)"
source "$root/bench/moe_run_sources.sh"
build_moe_run "$root" /tmp/moe-run-ncu || exit 1
run=/tmp/moe-run-ncu/moe-run
ncu=$(find_ncu)
for side in ${SIDES:-old new}; do
  [ -f "$dir/$side-store.cubin" ] &&
    cuobjdump -sass "$dir/$side-store.cubin" > "$out/sass-$side.txt" 2>&1
  echo "== $side ($(date -u +%H:%M:%S))"
  timeout "${NCU_TIMEOUT:-150}" "$ncu" --clock-control none \
    --kernel-name regex:moek_grouped_matmul_store --launch-skip 2 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats \
    --section MemoryWorkloadAnalysis --section SourceCounters --section LaunchStats \
    -o "/tmp/$side" -f "$run" "$dir/$side-fwd-mixtral.so" --repeat 3 > "$out/ncu-run-$side.txt" 2>&1
  echo "rc $?"
  tail -3 "$out/ncu-run-$side.txt"
  [ -f "/tmp/$side.ncu-rep" ] || continue
  "$ncu" -i "/tmp/$side.ncu-rep" > "$out/ncu-$side.txt" 2>&1
  "$ncu" -i "/tmp/$side.ncu-rep" --page source --csv --print-source sass \
    > "$out/source-$side.csv" 2>&1
  grep -E "Duration|Throughput|Stall|Issued|Eligible|Active Warps|Executed Ipc|One or More|No Eligible" \
    "$out/ncu-$side.txt" | head -40
done
echo "== done ($(date -u +%H:%M:%S))"
