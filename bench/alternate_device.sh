#!/usr/bin/env bash
# MoE-MLIR's training step and PyTorch grouped's (torch_baselines.py's own
# timing: median of 10 CUDA-event steps after 3 warm-ups) alternated ROUNDS
# times (default 3) in one call of the device tool, for presets where the two
# are within the card's run-to-run spread (mixtral: about 2%), so that the
# comparison rests on pairs measured side by side rather than on one of each.
# Prints each round's two medians and their ratio, then the median ratio.
#   OUT=$OUT ROUNDS=3 bash bench/alternate_device.sh mixtral [PRESET ...]
#   (carry .device/step, made by `bench/step_device.sh compile`, and
#   .device/torch_baselines.py)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/device-out}
mkdir -p "$out"
exec > >(tee "$out/alternate_device.log") 2>&1
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%MZ)"
source "$root/bench/moe_run_sources.sh"
build=/tmp/moe-run-build-alternate
build_moe_run "$root" "$build" || exit 1
grouped_ms() { # PRESET: PyTorch grouped's training step, ms
  PYTHONPATH="$root/.device" timeout 300 python3 - "$1" <<'PY'
import sys
import torch
import torch_baselines as tb
cfg = tb.CONFIGS[sys.argv[1]]
x, wr, w1, w2 = tb.make(cfg)
print("%.3f" % tb.bench(tb.moe_grouped, (x, wr, w1, w2, cfg[4]), True)[0])
PY
}
for preset in "$@"; do
  ratios=()
  for round in $(seq "${ROUNDS:-3}"); do
    ours=$(timeout 120 "$build/moe-run" "$root/.device/step/time-train-$preset.so" \
      --repeat 10 --warmup 3 | sed -n 's/^time: median \([0-9.]*\) ms.*/\1/p')
    theirs=$(grouped_ms "$preset" | tail -1)
    if [ -z "$ours" ] || [ -z "$theirs" ]; then
      echo "-- $preset round $round: a run failed (ours '$ours', grouped '$theirs')"
      continue
    fi
    ratio=$(python3 -c "print('%.4f' % ($theirs / $ours))")
    ratios+=("$ratio")
    echo "-- $preset round $round: MoE-MLIR $ours ms, PyTorch grouped $theirs ms, grouped / ours $ratio"
  done
  [ ${#ratios[@]} -gt 0 ] &&
    echo "== $preset: median of grouped / ours over ${#ratios[@]} rounds: $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}') (above 1: MoE-MLIR faster)"
done
echo "== done ($(date -u +%H:%M:%S)), GPU: $(nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader)"
