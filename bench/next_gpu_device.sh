#!/usr/bin/env bash
# One call of the device tool (one H200, under its 600 s limit) for what the
# branch next-gpu adds before it is merged, and the measurements issue #12
# still needs:
#   1. the wgmma weight gradients (bench/wgrad_device.sh: checks, then the
#      steps timed beside sm_90's mma.sync);
#   2. scatter_store (top_k = 1: each token's only row stored into y):
#      checked against the reference on sm_90a (wgmma), sm_90 (mma.sync),
#      f32 (SIMT), with a capacity (dropped rows zero), and ep=1 (the local
#      experts of expert parallelism), each with NaN-poisoned outputs;
#   3. bench/recompute_device.sh: every step and forward timed with its
#      per-kernel profile (the cost model's refit), and mixtral's chunk1-mid
#      budget checked alone (the one budget never checked on a GPU).
#
#   here:          bash bench/next_gpu_device.sh compile   (about 15 minutes:
#                  .device/wgrad, .device/top1, .device/artifacts)
#   GPU machine:   bash bench/next_gpu_device.sh run   (the device tool sends
#                  the session's own checkout: check next-gpu out there first)
#                  (carry .device/wgrad .device/top1 .device/artifacts)
#
# Logs under $OUT: wgrad_device.log and wgrad_logs.tar.gz, top1.log,
# timing/recompute-logs.tgz and timing/recompute_device.log (what
# calibrate_cost_model.py collect reads), check/checks.txt — 8 files at most,
# as the device tool returns.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" = compile ]; then
  bin=${BUILD_DIR:-$root/build}/bin
  bash "$root/bench/wgrad_device.sh" compile || exit 1
  top1=$root/.device/top1
  rm -rf "$top1" && mkdir -p "$top1"
  compile() { # NAME TARGET SPEC
    "$bin/moe-compile" --layer "$3" --target="$2" -o "$top1/$1.so" ||
      { echo "compile of $1 FAILED"; exit 1; }
    echo "compiled $1: $3 ($2)"
  }
  compile wgmma cuda:sm_90a tokens=1000,hidden=256,ffn=128,experts=16,top_k=1,dtype=bf16
  compile wgmma-odd cuda:sm_90a tokens=77,hidden=200,ffn=136,experts=5,top_k=1,dtype=bf16
  compile wgmma-capacity cuda:sm_90a tokens=256,hidden=256,ffn=128,experts=16,top_k=1,dtype=bf16,capacity=0.5
  compile mma-sync cuda:sm_90 tokens=1000,hidden=256,ffn=128,experts=16,top_k=1,dtype=bf16
  compile simt-f32 cuda:sm_90a tokens=64,hidden=64,ffn=32,experts=8,top_k=1
  compile ep1 cuda:sm_90a tokens=256,hidden=256,ffn=128,experts=16,top_k=4,dtype=bf16,ep=1
  compile ep1-capacity cuda:sm_90a tokens=64,hidden=64,ffn=32,experts=8,top_k=2,capacity=1.0,ep=1
  compile time-top1 cuda:sm_90a tokens=16384,hidden=2048,ffn=768,experts=128,top_k=1,dtype=bf16
  bash "$root/bench/compile_recompute_artifacts.sh" || exit 1
  du -sh "$root/.device/wgrad" "$top1" "$root/.device/artifacts"
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 compile | run" >&2; exit 2; }

out=${OUT:-$root/device-out}
mkdir -p "$out"
start=$SECONDS
echo "== 1. wgmma weight gradients ($(date -u +%H:%M:%S))"
BUDGET=${WGRAD_BUDGET:-200} OUT=$out bash "$root/.device/wgrad/bench/wgrad_device.sh" run \
  > /dev/null 2>&1
tail -20 "$out/wgrad_device.log"

echo "== 2. scatter_store, top_k = 1 ($((SECONDS - start)) s)"
run=/tmp/wgrad-moe-run/moe-run
# NCCL for ep=1: the loader's path, CUDA's lib64, else PyTorch's wheel.
for d in /usr/local/cuda/lib64 $(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null); do
  [ -e "$d/libnccl.so.2" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-} && break
done
{
  for a in "$root"/.device/top1/*.so; do
    name=$(basename "$a" .so)
    case $name in
    time-*) flags=(--repeat 20 --profile) ;;
    *) flags=(--check --seed 1) ;;
    esac
    echo "-- $name"
    timeout 60 "$run" "$a" "${flags[@]}" 2>&1 |
      grep -E "relative error|differ|CHECK|median|scatter|error" || echo "   FAILED"
  done
} > "$out/top1.log" 2>&1
cat "$out/top1.log"

echo "== 3. recomputation: timing, then mixtral chunk1-mid checked ($((SECONDS - start)) s)"
SKIP_CHECK=1 REPEAT=5 OUT=$out/timing bash "$root/bench/recompute_device.sh" > /dev/null 2>&1
grep -E "^-- " "$out/timing/recompute_device.log"
left=$((560 - (SECONDS - start)))
if [ "$left" -gt 60 ]; then
  SKIP_TIMING=1 ONLY='*mixtral-chunk1-mid*' RUN_TIMEOUT=$((left - 20)) \
    OUT=$out/check bash "$root/bench/recompute_device.sh" > /dev/null 2>&1
  cat "$out/check/checks.txt"
  rm -f "$out/check/recompute-logs.tgz" "$out/check/recompute_device.log"
else
  echo "mixtral chunk1-mid: not run ($left s left)"
fi
echo "== done ($((SECONDS - start)) s)"
