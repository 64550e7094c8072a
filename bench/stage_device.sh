#!/usr/bin/env bash
# Copies what bench/run_device.sh needs on the GPU machine (which has no
# MLIR) into DEST (default .device-stage): the sources of the MLIR-free
# runtime and moe-run, this script's bench/ folder and the artifacts that
# bench/compile_device_artifacts.sh put into .device/. Then, with the device
# tool, carry DEST and run `cd DEST && bash bench/run_device.sh`. Useful when
# the tool ships another checkout than this one (a worktree).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/.device-stage}
rm -rf "$dest" && mkdir -p "$dest/lib/Target" "$dest/tools"
cp -r "$root/runtime" "$root/include" "$root/bench" "$dest/"
cp -r "$root/lib/Layer" "$root/lib/Reference" "$dest/lib/"
cp "$root/lib/Target/CudaChip.h" "$root/lib/Target/CudaChip.cpp" \
  "$dest/lib/Target/"
cp -r "$root/tools/moe-run" "$dest/tools/"
cp -r "$root/.device" "$dest/.device"
du -sh "$dest"
