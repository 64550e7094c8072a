#!/usr/bin/env bash
# Builds everything and runs every test: the lit suite (dialect, passes,
# tools, CPU end to end, GoogleTest units), ctest (the GoogleTest units) and
# pytest (the Python bindings, moe_mlir.torch and the examples), and the
# fuzzers over their corpora plus a short mutation run of each
# (scripts/fuzz.sh regress, in its own instrumented build tree build-fuzz/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
echo "== lit (check-moe)"
ninja -C "$build" check-moe
echo "== the runtime on its own (no MLIR, no LLVM)"
cmake -S "$root/runtime" -B "$build/runtime-standalone" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
ninja -C "$build/runtime-standalone" -j "${JOBS:-$(nproc)}" > /dev/null
echo "runtime-standalone: built"
echo "== ctest"
ctest --test-dir "$build" --output-on-failure
echo "== pytest (python_bindings/tests)"
PYTHONPATH="$build/python_packages${PYTHONPATH:+:$PYTHONPATH}" \
  python3 -m pytest -q "$root/python_bindings/tests"
echo "== pip install ./python_bindings (a wheel, into a fresh virtual environment)"
# As a user installs it: scikit-build-core builds the package from the
# sources in an isolated build environment (no build/ tree); then the
# pytest suite runs again on the installed package alone. The environment
# sees the system's packages, so that PyTorch is not downloaded twice.
venv=$build/pip-venv
rm -rf "$venv"
python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  "$root/python_bindings"
(cd "$venv" && unset PYTHONPATH &&
  "$venv/bin/python" -c 'import moe_mlir, moe_mlir.torch, sys; assert "site-packages" in moe_mlir.__file__, moe_mlir.__file__; print("installed:", moe_mlir.__file__, "compiler:", moe_mlir.has_compiler())' &&
  "$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/python_bindings/tests")
echo "== fuzzers (scripts/fuzz.sh regress)"
"$root/scripts/fuzz.sh" regress
