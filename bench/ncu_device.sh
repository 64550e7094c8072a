#!/usr/bin/env bash
# One call on the GPU machine (device tool, carry .device/artifacts): the
# card's dense bf16 GEMM rate through PyTorch (the ceiling issue #10's 70% is
# of), then Nsight Compute on the expert GEMMs of the presets' forward
# (gather_sum artifacts of bench/compile_device_artifacts.sh): speed of
# light, memory workload, warp stall reasons, one launch each, clocks left
# alone (--clock-control none, as the device notes ask).
# Logs in $OUT: ncu_device.log (the summary) and ncu-*.txt (full reports).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
art=$root/.device/artifacts
out=${OUT:-$root/device-out}
mkdir -p "$out"
exec > >(tee "$out/ncu_device.log") 2>&1
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%MZ)"
source "$root/bench/moe_run_sources.sh"
build_moe_run "$root" /tmp/moe-run-ncu || exit 1
run=/tmp/moe-run-ncu/moe-run

echo "== dense bf16 GEMM through PyTorch, 8192^3, random normal inputs, median of 20 after 5 warm-ups"
python3 - <<'PY'
import torch
n = 8192
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
for _ in range(5):
    a @ b
torch.cuda.synchronize()
times = []
for _ in range(20):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); a @ b; e.record(); torch.cuda.synchronize()
    times.append(s.elapsed_time(e))
times.sort()
ms = times[len(times) // 2]
print("dense 8192^3 bf16: %.3f ms, %.0f TFLOP/s (min %.3f ms, %.0f)" %
      (ms, 2 * n ** 3 / ms / 1e9, times[0], 2 * n ** 3 / times[0] / 1e9))
PY

ncu=$(find_ncu)
echo "ncu: ${ncu:-none}"
[ -n "$ncu" ] || exit 1
for preset in ${PRESETS:-mixtral qwen3_30b_a3b}; do
  a=$art/time-$preset-gather_sum.so
  echo "== $preset: the grouped GEMMs ($(date -u +%H:%M:%S))"
  timeout 200 "$ncu" --clock-control none \
    --kernel-name "regex:moek_grouped_matmul|moek_route_scores|moek_combine_rows" \
    --launch-skip 4 --launch-count 4 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
    --section WarpStateStats --section LaunchStats --section Occupancy --section SchedulerStats \
    "$run" "$a" --repeat 2 > "$out/ncu-$preset.txt" 2>&1
  echo "rc $?"
  grep -E "moek_|Duration|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|DRAM Throughput|L1/TEX Cache Throughput|Stall|Registers Per|Achieved Occupancy|Issue Slots Busy|Executed Ipc|One or More|No Eligible" "$out/ncu-$preset.txt" | head -80
done
echo "== done ($(date -u +%H:%M:%S))"
