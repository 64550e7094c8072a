#!/usr/bin/env bash
# One call on the GPU machine (device tool, carry .device; run
# bench/compile_python_artifacts.sh here first): builds the runtime-only
# moe_mlir package (MOE_MLIR_PYTHON_COMPILER=OFF: moert and the runtime
# module, no MLIR) and the MLIR-free moe-run there, runs the GPU pytest
# suite on the precompiled artifacts with poisoned outputs, then times the
# PyTorch layer against moe-run on the same artifacts
# (bench/python_overhead.py). Logs go to $OUT (or ./device-out).
# SKIP_BENCH=1 runs the tests only, SKIP_TESTS=1 the benchmark only;
# PROFILE=1 adds bench/python_profile.py (where one call's time goes; its
# Chrome traces land in $OUT).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=$root/.device/python
out=${OUT:-$root/device-out}
mkdir -p "$out"
exec > >(tee "$out/python_device.log") 2>&1
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== python $(python3 --version 2>&1), torch $(python3 -c 'import torch; print(torch.__version__)')"
export PYTHONPATH=$py/site
pkg=/tmp/moe-python
{ cmake -S "$root/python_bindings" -B /tmp/moe-python-build -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DMOE_MLIR_PYTHON_COMPILER=OFF \
    -DPython_EXECUTABLE="$(command -v python3)" &&
  ninja -C /tmp/moe-python-build &&
  cmake --install /tmp/moe-python-build --prefix $pkg; } > "$out/python-build.log" 2>&1 ||
  { echo "runtime-only package: build FAILED"; tail -30 "$out/python-build.log"; exit 1; }
cp "$root"/python_bindings/moe_mlir/*.py $pkg/moe_mlir/
cmake -S "$root/tools/moe-run" -B /tmp/moe-run-build -G Ninja -DCMAKE_BUILD_TYPE=Release > "$out/moe-run-build.log" 2>&1 &&
  ninja -C /tmp/moe-run-build >> "$out/moe-run-build.log" 2>&1 ||
  { echo "moe-run: build FAILED"; tail -30 "$out/moe-run-build.log"; exit 1; }

export PYTHONPATH=$pkg:$py/site MOE_MLIR_ARTIFACT_DIR=$py/artifacts \
  MOE_RUN=/tmp/moe-run-build/moe-run
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  echo "== GPU tests ($(date -u +%H:%M:%S))"
  (cd "$root/python_bindings/tests" &&
    python3 -m pytest -v -p no:cacheprovider test_torch_cuda.py 2>&1 | tail -30)
fi
[ "${SKIP_BENCH:-0}" = 1 ] && exit 0
echo "== the Python path's overhead ($(date -u +%H:%M:%S))"
python3 "$root/bench/python_overhead.py" --artifacts $py/artifacts \
  --moe-run /tmp/moe-run-build/moe-run --repeat "${REPEAT:-20}" \
  --training-repeat "${TRAINING_REPEAT:-0}"
if [ "${PROFILE:-0}" = 1 ]; then
  echo "== where the time goes ($(date -u +%H:%M:%S))"
  python3 "$root/bench/python_profile.py" --artifacts $py/artifacts --out "$out"
fi
echo "== done ($(date -u +%H:%M:%S))"
