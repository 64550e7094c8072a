# Sourced by the device scripts that build moe-run on the GPU machine (no
# MLIR there): what it is built from, and how.
#
# copy_moe_run_sources ROOT DEST SCRIPT: the MLIR-free runtime and moe-run's
#   sources from the checkout ROOT into DEST, with bench/SCRIPT and this file
#   in DEST/bench, so that DEST (carried to the GPU machine) runs SCRIPT.
# build_moe_run DIR BUILD: builds DIR/tools/moe-run into BUILD (BUILD/moe-run);
#   on failure prints the end of its log and returns 1.

copy_moe_run_sources() {
  local root=$1 dest=$2 script=$3
  mkdir -p "$dest/lib/Target" "$dest/tools" "$dest/bench"
  cp -r "$root/runtime" "$root/include" "$dest/"
  cp "$root/bench/$script" "$root/bench/moe_run_sources.sh" "$dest/bench/"
  cp -r "$root/lib/Layer" "$root/lib/Reference" "$dest/lib/"
  cp "$root/lib/Target/CudaChip.h" "$root/lib/Target/CudaChip.cpp" \
    "$dest/lib/Target/"
  cp -r "$root/tools/moe-run" "$dest/tools/"
}

build_moe_run() {
  local dir=$1 build=$2
  cmake -S "$dir/tools/moe-run" -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release > "$build.cmake.log" 2>&1 ||
    { tail -30 "$build.cmake.log"; return 1; }
  ninja -C "$build" -j "$(nproc)" > "$build.ninja.log" 2>&1 ||
    { tail -30 "$build.ninja.log"; return 1; }
}
