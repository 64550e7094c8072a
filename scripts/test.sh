#!/usr/bin/env bash
# Builds everything and runs every test: the lit suite (dialect, passes,
# tools, CPU end to end, GoogleTest units) and ctest (the GoogleTest units).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
echo "== lit (check-moe)"
ninja -C "$build" check-moe
echo "== ctest"
ctest --test-dir "$build" --output-on-failure
