#!/usr/bin/env bash
# Prepares, here (where the compiler is), what bench/python_device.sh needs
# on the GPU machine (no MLIR, no network) in .device/python/:
#   artifacts/  the forward and training artifacts of the GPU tests
#               (python_bindings/tests/cuda_cases.py; CUDA and CPU) and of
#               the three presets (bench/python_overhead.py), under the
#               names moe_mlir.torch looks for in MOE_MLIR_ARTIFACT_DIR
#   site/       nanobind (to build the runtime module there) and pytest
# TARGET picks the chip (default cuda:sm_90a).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/.device/python
target=${TARGET:-cuda:sm_90a}
rm -rf "$out" && mkdir -p "$out/artifacts" "$out/site"
export PYTHONPATH=$root/${BUILD_DIR:-build}/python_packages:$root/python_bindings/tests
# The compile cache stays off .device (which is carried).
export MOE_MLIR_CACHE_DIR=${MOE_MLIR_CACHE_DIR:-/tmp/moe_mlir-device-cache}
python3 "$root/python_bindings/tests/cuda_cases.py" "$out/artifacts" "$target"
python3 "$root/bench/python_overhead.py" --precompile "$out/artifacts"
site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for package in nanobind pytest _pytest pluggy iniconfig packaging py.py; do
  cp -r "$site/$package" "$out/site/"
done
du -sh "$out"
