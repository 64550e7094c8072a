#!/usr/bin/env bash
# Expert parallelism on the GPU machine (one GPU, no MLIR there): what is
# there for NCCL, and what of expert parallelism runs today.
#
#   here:            bench/ep_device.sh compile     (artifacts into .device/ep/)
#   GPU machine:     bench/ep_device.sh run         (device tool, carry .device)
#
# "run" reports (to $OUT, else ./device-out/ep_device.log):
#  1. the driver, CUDA and whether libnccl.so.2 loads (its version through
#     ncclGetVersion, from a tiny C program built there with dlopen: no NCCL
#     headers needed, and through moert's own loader in the runtime's unit
#     tests Nccl.* with the torchrun rendezvous Rendezvous.*) and whether
#     mpirun and libmpi.so.40 are there;
#  2. the MLIR-free runtime and moe-run built there, and the per-rank CPU
#     artifacts of expert parallelism (ep=1 on one rank, and ep=2 under
#     mpirun when it is installed) checked against the reference: the MPI
#     path of the runtime on that machine.
# The CUDA lowering of the collectives (NCCL) is not written yet, so there is
# no expert-parallel CUDA artifact to run: step 1 says what it would find.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.device/ep

if [ "${1:-}" = compile ]; then
  bin=${BUILD_DIR:-$root/build}/bin
  rm -rf "$dir" && mkdir -p "$dir"
  for ranks in 1 2; do
    "$bin/moe-compile" --layer "tiny,ep=$ranks" --target=cpu -o "$dir/ep$ranks-tiny.so"
    "$bin/moe-compile" --layer "tiny,ep=$ranks" --backward --target=cpu \
      -o "$dir/ep$ranks-tiny-train.so"
  done
  # GoogleTest's sources, for the runtime's unit tests there (NCCL's).
  if [ -d /usr/src/googletest ]; then
    rm -rf "$dir/googletest" && cp -r /usr/src/googletest "$dir/googletest"
  fi
  echo "compiled $(ls "$dir"/*.so | wc -l) artifacts into $dir"
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 compile|run" >&2; exit 2; }

out=${OUT:-$root/device-out}
mkdir -p "$out"
exec > >(tee "$out/ep_device.log") 2>&1

echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== CUDA: $(ls -d /usr/local/cuda*/ 2>/dev/null | tr '\n' ' ')"
echo "== libnccl.so.2 in the loader's cache:"
ldconfig -p 2>/dev/null | grep -i nccl || echo "   (none)"
echo "== libnccl.so.2 files:"
find / -xdev -name 'libnccl.so*' 2>/dev/null | head -5 || true
cat > /tmp/nccl_probe.c <<'C'
#include <dlfcn.h>
#include <stdio.h>
int main(void) {
  void *nccl = dlopen("libnccl.so.2", RTLD_NOW);
  if (!nccl) { printf("dlopen(libnccl.so.2) failed: %s\n", dlerror()); return 1; }
  int (*version)(int *) = (int (*)(int *))dlsym(nccl, "ncclGetVersion");
  int v = 0;
  if (!version || version(&v) != 0) { printf("ncclGetVersion missing or failed\n"); return 1; }
  printf("NCCL %d.%d.%d loads (code %d)\n", v / 10000, (v / 100) % 100, v % 100, v);
  const char *names[] = {"ncclCommInitRank", "ncclGetUniqueId", "ncclSend", "ncclRecv",
                         "ncclGroupStart", "ncclGroupEnd", "ncclAllReduce", 0};
  for (int i = 0; names[i]; ++i)
    printf("  %-18s %s\n", names[i], dlsym(nccl, names[i]) ? "found" : "MISSING");
  return 0;
}
C
cc /tmp/nccl_probe.c -o /tmp/nccl_probe -ldl && /tmp/nccl_probe
# moert's own view: its loader (version check) and the rendezvous, in the
# runtime's unit tests (Nccl.*, Rendezvous.*, Collectives.*).
if [ -d "$dir/googletest" ]; then
  gt=/tmp/googletest-install
  { cmake -S "$dir/googletest" -B /tmp/googletest-build -G Ninja \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$gt -DBUILD_GMOCK=OFF &&
    ninja -C /tmp/googletest-build install &&
    cmake -S "$root/runtime" -B /tmp/moert-ep-tests -G Ninja -DCMAKE_PREFIX_PATH=$gt &&
    ninja -C /tmp/moert-ep-tests MoertTests; } > /tmp/moert-ep-tests.log 2>&1 ||
    { echo "runtime tests: build FAILED"; tail -20 /tmp/moert-ep-tests.log; }
  echo "== moert: NCCL, rendezvous and collectives unit tests"
  /tmp/moert-ep-tests/test/MoertTests --gtest_filter='Nccl.*:Rendezvous.*:Collectives.*' 2>&1 | tail -25
fi
echo "== MPI: mpirun $(command -v mpirun || echo 'not installed'); libmpi.so.40 $(ldconfig -p | grep -q libmpi.so.40 && echo found || echo 'not found')"

echo "== the MLIR-free moe-run (with the runtime)"
cmake -S "$root/tools/moe-run" -B /tmp/moe-run-build -G Ninja -DCMAKE_BUILD_TYPE=Release > /tmp/cmake.log || { cat /tmp/cmake.log; exit 1; }
ninja -C /tmp/moe-run-build > /tmp/ninja.log || { cat /tmp/ninja.log; exit 1; }
run=/tmp/moe-run-build/moe-run
failures=0
for a in "$dir"/ep1-*.so; do
  echo "-- $(basename "$a") on one rank"
  flags=""; case "$a" in *-train.so) flags=--backward;; esac
  "$run" "$a" $flags --check | tail -3 || failures=$((failures + 1))
done
if command -v mpirun > /dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  for a in "$dir"/ep2-*.so; do
    echo "-- $(basename "$a") on two ranks (mpirun)"
    flags=""; case "$a" in *-train.so) flags=--backward;; esac
    mpirun --allow-run-as-root --oversubscribe -n 2 "$run" "$a" $flags --check | tail -3 ||
      failures=$((failures + 1))
  done
else
  echo "-- mpirun is not installed here: the two-rank artifacts are not run"
fi
echo "== $failures failures"
[ "$failures" = 0 ]
