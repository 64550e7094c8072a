#!/usr/bin/env bash
# Expert parallelism on the GPU machine (one GPU, no MLIR there): the CUDA
# artifacts of ep=1 run through NCCL (the same path as R ranks: counts and
# rows through grouped ncclSend/ncclRecv on the communication stream),
# checked against the reference, timed with and without overlap, traced,
# and the fault paths that one GPU can reach.
#
#   here:          bench/ep_device.sh compile [DEST]   (artifacts and sources
#                  into DEST, default .device/ep; DEST travels with `carry`)
#   GPU machine:   bash DEST/bench/ep_device.sh run    (from the repo root or
#                  DEST: the script finds its folder)
#
# "run" writes its log to $OUT/ep_device.log (else ./device-out/) and the
# trace of the overlapped run to $OUT/ep_overlap_trace.json.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" = compile ]; then
  root=$here
  bin=${BUILD_DIR:-$root/build}/bin
  dest=${2:-$root/.device/ep}
  rm -rf "$dest" && mkdir -p "$dest/art" "$dest/lib/Target" "$dest/tools"
  # The MLIR-free runtime and moe-run, built there.
  cp -r "$root/runtime" "$root/include" "$dest/"
  mkdir -p "$dest/bench" && cp "$root/bench/ep_device.sh" "$dest/bench/"
  cp -r "$root/lib/Layer" "$root/lib/Reference" "$dest/lib/"
  cp "$root/lib/Target/CudaChip.h" "$root/lib/Target/CudaChip.cpp" \
    "$dest/lib/Target/"
  cp -r "$root/tools/moe-run" "$dest/tools/"
  [ -d /usr/src/googletest ] && cp -r /usr/src/googletest "$dest/googletest"
  t=cuda:sm_90a
  # bf16 checks at a size the CPU reference finishes in seconds; timings at
  # 2048 tokens (the reference's --check there takes minutes on the CPU).
  small=tokens=256,hidden=256,ffn=128,experts=16,top_k=4,dtype=bf16
  mid=tokens=2048,hidden=1024,ffn=512,experts=32,top_k=4,dtype=bf16
  compile() { # name, spec, flags...
    local name=$1 spec=$2; shift 2
    "$bin/moe-compile" --layer "$spec" --target=$t "$@" -o "$dest/art/$name.so" ||
      { echo "compile of $name FAILED"; exit 1; }
  }
  compile ep1-tiny tiny,ep=1
  compile ep1-tiny-train tiny,ep=1 --backward
  compile ep1-tiny-overlap tiny,ep=1,overlap=2
  compile ep1-capacity tokens=64,hidden=64,ffn=32,experts=8,top_k=2,capacity=1.0,ep=1
  compile ep1-small "$small,ep=1"
  compile ep1-small-overlap "$small,ep=1,overlap=2"
  compile ep1-small-train "$small,ep=1" --backward
  compile ep1-mid "$mid,ep=1"
  compile ep1-mid-overlap "$mid,ep=1,overlap=4"
  compile ep1-mid-train "$mid,ep=1" --backward
  compile nonep-mid "$mid"
  compile nonep-mid-train "$mid" --backward
  compile ep2-tiny tiny,ep=2
  du -sh "$dest"
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 compile [DEST] | run" >&2; exit 2; }

dir=$here
out=${OUT:-$PWD/device-out}
mkdir -p "$out"
exec > >(tee "$out/ep_device.log") 2>&1
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1), $(date -u +%Y-%m-%dT%H:%MZ)"
# NCCL: the loader's path, CUDA's lib64, else PyTorch's wheel.
for d in /usr/local/cuda/lib64 $(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null); do
  [ -e "$d/libnccl.so.2" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-} && echo "== libnccl.so.2 from $d" && break
done
ldconfig -p | grep -q libnccl.so.2 && echo "== libnccl.so.2 in the loader's cache"

jobs=$(nproc)
export MOERT_NCCL_TIMEOUT_S=${MOERT_NCCL_TIMEOUT_S:-20}
if [ -d "$dir/googletest" ]; then
  gt=/tmp/googletest-install
  { cmake -S "$dir/googletest" -B /tmp/gt-build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX=$gt -DBUILD_GMOCK=OFF && ninja -C /tmp/gt-build install &&
    cmake -S "$dir/runtime" -B /tmp/rt-tests -G Ninja -DCMAKE_PREFIX_PATH=$gt &&
    ninja -C /tmp/rt-tests -j "$jobs" MoertTests; } > /tmp/rt-tests.log 2>&1 ||
    { echo "runtime tests: build FAILED"; tail -20 /tmp/rt-tests.log; }
  echo "== moert unit tests: NCCL, its collectives' error paths, streams and events"
  timeout 120 /tmp/rt-tests/test/MoertTests \
    --gtest_filter='Nccl*:Rendezvous.*:Collectives.*' 2>&1 | grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) +\]|Failure|error" | head -40
fi

cmake -S "$dir/tools/moe-run" -B /tmp/moe-run-build -G Ninja -DCMAKE_BUILD_TYPE=Release > /tmp/cmake.log ||
  { cat /tmp/cmake.log; exit 1; }
ninja -C /tmp/moe-run-build -j "$jobs" > /tmp/ninja.log || { cat /tmp/ninja.log; exit 1; }
run=/tmp/moe-run-build/moe-run
failures=0
check() { # title, artifact, flags...
  local title=$1 a=$dir/art/$2.so; shift 2
  echo "-- $title"
  timeout 40 "$run" "$a" "$@" > /tmp/one.log 2>&1
  local rc=$?
  grep -E "expert parallelism|communication:|relative error|differ|CHECK|median|error|trace:" /tmp/one.log
  [ $rc = 0 ] || { echo "   FAILED (exit $rc)"; failures=$((failures + 1)); }
}
echo "== correctness on one GPU through NCCL (ep=1), two seeds"
for s in 1 2; do
  check "tiny forward, seed $s" ep1-tiny --check --seed $s
  check "tiny training step, seed $s" ep1-tiny-train --backward --check --seed $s
  check "tiny forward overlap=2, seed $s" ep1-tiny-overlap --check --seed $s
  check "capacity 1.0 forward, seed $s" ep1-capacity --check --seed $s
  check "bf16 256 tokens forward, seed $s" ep1-small --check --seed $s
  check "bf16 256 tokens overlap=2, seed $s" ep1-small-overlap --check --seed $s
  check "bf16 256 tokens training step, seed $s" ep1-small-train --backward --check --seed $s
done
echo "== time (median of 20), the same layer without ep, with ep=1, with overlap=4"
check "no ep" nonep-mid --repeat 20
check "ep=1" ep1-mid --repeat 20
check "ep=1 overlap=4" ep1-mid-overlap --repeat 20
check "ep=1 overlap=4, traced" ep1-mid-overlap --repeat 3 --trace=$out/ep_overlap_trace.json
check "no ep, training step" nonep-mid-train --backward --repeat 20
check "ep=1 training step" ep1-mid-train --backward --repeat 20

echo "== faults (each must fail fast with a message, never hang)"
expect_fail() { # title, pattern, command...
  local title=$1 pattern=$2; shift 2
  echo "-- $title"
  local start=$(date +%s)
  timeout 60 "$@" > /tmp/fault.log 2>&1
  local rc=$? took=$(( $(date +%s) - start ))
  grep -m2 -E "error" /tmp/fault.log
  if [ $rc = 0 ] || [ $rc = 124 ] || ! grep -q "$pattern" /tmp/fault.log; then
    echo "   UNEXPECTED (exit $rc after ${took}s)"; failures=$((failures + 1))
  else
    echo "   ok: exit $rc after ${took}s"
  fi
}
expect_fail "NCCL missing" "cannot load libnccl-missing.so.2" \
  env MOERT_NCCL_LIBRARY=libnccl-missing.so.2 "$run" "$dir/art/ep1-tiny.so" --check
expect_fail "torchrun rank 1 of 2 whose rank 0 never comes" "rank 1 of 2" \
  env RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 MOERT_NCCL_TIMEOUT_S=5 \
  "$run" "$dir/art/ep2-tiny.so" --backend=cuda:sm_90a
if command -v mpirun > /dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  # Two ranks on one GPU: NCCL refuses or runs; either way no hang.
  echo "-- mpirun -n 2 on one GPU"
  timeout 90 mpirun --allow-run-as-root --oversubscribe -n 2 -x LD_LIBRARY_PATH \
    -x MOERT_NCCL_TIMEOUT_S=10 "$run" "$dir/art/ep2-tiny.so" --check 2>&1 | grep -E "error|CHECK|differ" | head -6
  echo "   exit ${PIPESTATUS[0]}"
else
  echo "-- mpirun is not installed here: two ranks are not run"
fi
echo "== $failures failures"
[ "$failures" = 0 ]
