#!/usr/bin/env bash
# The two ways back to token order on the GPU machine (issue #10): the
# gate-weighted scatter-add (default) and gather_sum (rows stored in expert
# order, summed per token by a gather). Checks the gather_sum artifacts of
# .device/epilogue/ against the reference and times each preset both ways
# (moe-run --repeat --profile), the scatter_add artifacts being
# .device/artifacts/time-PRESET.so. Compile here first:
#   for p in qwen3_30b_a3b olmoe mixtral; do
#     moe-compile --layer $p --target=cuda:sm_90a --epilogue=gather_sum \
#       -o .device/epilogue/time-$p-gather_sum.so
#     moe-compile --layer $p,tokens=300 ... -o .device/epilogue/check-$p-gather_sum.so
#   done
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/device-out}
mkdir -p "$out"
exec > >(tee "$out/epilogue_device.log") 2>&1
cmake -S "$root/tools/moe-run" -B /tmp/moe-run-build -G Ninja -DCMAKE_BUILD_TYPE=Release > /tmp/epilogue-cmake.log &&
  ninja -C /tmp/moe-run-build > /tmp/epilogue-ninja.log || { echo "moe-run: build FAILED"; exit 1; }
run=/tmp/moe-run-build/moe-run
failures=0
for a in "$root"/.device/epilogue/check-*.so; do
  name=$(basename "$a" .so)
  if "$run" "$a" --check --seed 1 > /tmp/$name.log 2>&1; then
    echo "$name: $(grep -E '\(y\)' /tmp/$name.log | sed 's/^ *//')"
  else
    failures=$((failures + 1)); echo "$name: FAILED"; tail -5 /tmp/$name.log
  fi
done
for preset in qwen3_30b_a3b olmoe mixtral; do
  for a in "$root/.device/artifacts/time-$preset.so" \
           "$root/.device/epilogue/time-$preset-gather_sum.so"; do
    "$run" "$a" --repeat "${REPEAT:-10}" --profile > /tmp/time.log 2>&1 ||
      { failures=$((failures + 1)); echo "$(basename "$a"): FAILED"; tail -5 /tmp/time.log; continue; }
    echo "-- $(basename "$a" .so): $(grep -E '^time|^memory' /tmp/time.log | tr '\n' ' ')"
    sed -n '/^profile/,$p' /tmp/time.log | head -7
  done
done
echo "epilogue failures: $failures"
exit $((failures > 0))
