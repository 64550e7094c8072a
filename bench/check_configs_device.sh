#!/usr/bin/env bash
# The sm_90a configurations and training steps against the CPU reference,
# outputs poisoned (moe-run does it): a short run for the end of a lease.
# Every config-*.so and check-*.so of bench/compile_device_artifacts.sh
# (the presets at few tokens, with each EPILOGUES= epilogue).
cd "$(dirname "$0")/.."
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%MZ)"
# MOE_RUN_BUILD: share another script's build of moe-run in the same call.
mr=${MOE_RUN_BUILD:-/tmp/mr}
cmake -S tools/moe-run -B $mr -G Ninja -DCMAKE_BUILD_TYPE=Release > /tmp/cmake.log && ninja -C $mr > /tmp/ninja.log || { tail /tmp/ninja.log; exit 1; }
fail=0
for a in .device/artifacts/config-*.so .device/artifacts/check-*.so; do
  n=$(basename $a .so); extra=""; [ $n = config-dynamic ] && extra="--tokens 29"
  if timeout 120 $mr/moe-run $a --check --seed 7 $extra > /tmp/$n.log 2>&1; then
    echo "$n: $(grep -cE 'OK$' /tmp/$n.log) results OK; $(grep -E '\(y\)' /tmp/$n.log | sed 's/^ *//' | cut -c1-70)"
  else fail=$((fail+1)); echo "$n: FAILED"; tail -4 /tmp/$n.log; fi
done
echo "failures: $fail"
