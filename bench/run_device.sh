#!/usr/bin/env bash
# One call on the GPU machine (device tool, carry .device): builds the MLIR-free
# runtime and moe-run there, checks every artifact of
# bench/compile_device_artifacts.sh against the CPU reference, times the
# presets (CUDA events, median), profiles their kernels and runs the PyTorch
# baselines in the same run (ScatterMoE too when .device/scattermoe is carried).
# Logs go to $OUT (or ./device-out). CHECK_ONLY=1 skips timing and baselines,
# SKIP_TORCH=1 the baselines, RUNTIME_TESTS_ONLY=1 all but the runtime's unit
# tests, SKIP_RUNTIME_TESTS=1 the runtime's unit tests; SEEDS="1 2 3" checks
# with several random inputs.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
art=$root/.device/artifacts
out=${OUT:-$root/device-out}
repeat=${REPEAT:-5}
# Per-artifact logs stay on the machine (the device tool brings back a few
# files only); details.log in $out collects them at the end.
logs=$(mktemp -d)
mkdir -p "$out"
trap 'tail -n +1 "$logs"/*.log > "$out/details.log" 2>/dev/null' EXIT
exec > >(tee "$out/run_device.log") 2>&1

echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%MZ)"
cmake -S "$root/tools/moe-run" -B /tmp/moe-run-build -G Ninja -DCMAKE_BUILD_TYPE=Release > /tmp/cmake.log || { cat /tmp/cmake.log; exit 1; }
ninja -C /tmp/moe-run-build > /tmp/ninja.log || { cat /tmp/ninja.log; exit 1; }
run=/tmp/moe-run-build/moe-run

# The runtime's unit tests, whose CUDA cases skip on machines without a GPU
# (CI): GoogleTest is built from the sources compile_device_artifacts.sh
# carries, since the GPU machine has none installed.
if [ -d "$root/.device/googletest" ] && [ "${SKIP_RUNTIME_TESTS:-0}" != 1 ]; then
  echo "== runtime unit tests on the GPU ($(date -u +%H:%M:%S))"
  gt=/tmp/googletest-install
  { cmake -S "$root/.device/googletest" -B /tmp/googletest-build -G Ninja \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$gt -DBUILD_GMOCK=OFF &&
    ninja -C /tmp/googletest-build install &&
    cmake -S "$root/runtime" -B /tmp/moert-tests -G Ninja -DCMAKE_PREFIX_PATH=$gt &&
    ninja -C /tmp/moert-tests; } > "$logs/runtime-tests-build.log" 2>&1 ||
    { echo "runtime tests: build FAILED"; tail -20 "$logs/runtime-tests-build.log"; }
  (cd /tmp/moert-tests && ctest --output-on-failure 2>&1 | tail -12)
  [ "${RUNTIME_TESTS_ONLY:-0}" = 1 ] && exit 0
fi

echo "== correctness: every artifact against the CPU reference ($(date -u +%H:%M:%S))"
failures=0
for a in "$art"/config-*.so "$art"/check-*.so; do
  name=$(basename "$a" .so)
  extra=""
  [ "$name" = config-dynamic ] && extra="--tokens 29"
  for seed in ${SEEDS:-1}; do
    if "$run" "$a" --check --seed "$seed" $extra > "$logs/$name-$seed.log" 2>&1; then
      echo "$name (seed $seed): $(grep -E '\(y\)' "$logs/$name-$seed.log" | sed 's/^ *//')"
    else
      failures=$((failures + 1))
      echo "$name (seed $seed): FAILED"; tail -5 "$logs/$name-$seed.log"
    fi
  done
done
echo "correctness failures: $failures"

# CHECK_ONLY=1: correctness only (after a change that cannot affect speed).
[ "${CHECK_ONLY:-0}" = 1 ] && exit $((failures > 0))

echo "== timing: presets, forward, median of $repeat runs (CUDA events), then ($(date -u +%H:%M:%S))"
echo "   each kernel's share (events around every launch, a separate pass)"
for a in "$art"/time-*.so "$art"/tile-*.so; do
  [ -e "$a" ] || continue
  name=$(basename "$a" .so)
  "$run" "$a" --repeat "$repeat" --profile > "$logs/$name.log" 2>&1
  echo "-- $name: $(grep -E '^time|^memory|error' "$logs/$name.log" | tr '\n' ' ')"
  sed -n '/^profile/,$p' "$logs/$name.log" | head -8
done

# SKIP_TORCH=1: no baselines (a tuning run; results need them).
[ "${SKIP_TORCH:-0}" = 1 ] && exit $((failures > 0))
echo "== PyTorch baselines (same machine, same run) ($(date -u +%H:%M:%S))"
# ScatterMoE's rows need its package: carried as .device/scattermoe (the
# GPU machine has no network), made here from the fetched repository:
#   git -C MIRROR archive HEAD scattermoe | tar -x -C .device/scattermoe
scatter=$art/../scattermoe
[ -d "$scatter/scattermoe" ] && export PYTHONPATH=$scatter${PYTHONPATH:+:$PYTHONPATH}
python3 "$art/../torch_baselines.py" 2>&1 | tee "$out/torch_baselines.log" | tail -25
