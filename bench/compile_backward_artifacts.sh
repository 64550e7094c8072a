#!/usr/bin/env bash
# Compiles, here (where MLIR is), the training-step artifacts that
# bench/backward_device.sh runs on the GPU machine, into .device/backward/:
#   TARGET/check-NAME.so  small training steps (--backward) for --check
#                         against the reference backward: bf16 with odd rows,
#                         empty experts, capacity + gelu, k = E, many rows
#                         (several K steps of the weight-gradient GEMMs), two
#                         experts a chunk, f32 and odd sizes (the SIMT
#                         fallbacks), qwen3_30b_a3b
#                         and olmoe at their full H, F, E, k with 300 tokens;
#                         each also as check-NAME-saved, h saved (budget 100%)
#   TARGET/time-PRESET.so the full-size training steps, for timing
# for TARGET in sm_90a (wgmma forward) and sm_90 (mma.sync everywhere); the
# backward's tensor-core GEMMs are mma.sync on both. TARGETS overrides the
# list. Then: bench/stage_device.sh (or carry .device) and
# `bash bench/backward_device.sh` on the GPU machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BUILD_DIR:-$root/build}/bin
out=$root/.device/backward
rm -rf "$out" && mkdir -p "$out"

for chip in ${TARGETS:-sm_90a sm_90}; do
  dir=$out/$chip
  mkdir -p "$dir"
  compile() { # NAME SPEC [FLAGS]
    local name=$1 spec=$2; shift 2
    "$bin/moe-compile" --layer "$spec" --backward --target="cuda:$chip" \
      -o "$dir/$name.so" "$@"
    echo "compiled $chip/$name: $spec --backward $*"
  }
  while read -r name spec; do
    compile "check-$name" "$spec"
    # The same step saving h (the save-everything budget): the forward's
    # GLU GEMM stores h, the backward reads it and writes dh over it. (A
    # budget needs a static token count.)
    case $spec in *dynamic=1*) continue ;; esac
    compile "check-$name-saved" "$spec" --memory-budget=100%
  done <<'CONFIGS'
bf16 tokens=32,hidden=64,ffn=48,experts=8,top_k=2,dtype=bf16
bf16-odd-rows tokens=37,hidden=64,ffn=48,experts=5,top_k=3,dtype=bf16
bf16-empty-experts tokens=4,hidden=32,ffn=16,experts=16,top_k=1,dtype=bf16
bf16-capacity-gelu tokens=64,hidden=64,ffn=32,experts=4,top_k=2,capacity=0.5,dtype=bf16,activation=gelu_glu
bf16-k-eq-e tokens=16,hidden=32,ffn=24,experts=4,top_k=4,dtype=bf16
bf16-sigmoid-aux tokens=32,hidden=64,ffn=48,experts=8,top_k=2,router=sigmoid,bias=1,aux_loss=0.01,dtype=bf16
bf16-many-rows tokens=1000,hidden=136,ffn=200,experts=6,top_k=2,dtype=bf16
bf16-dynamic tokens=32,hidden=64,ffn=48,experts=8,top_k=2,dtype=bf16,dynamic=1
f32 tokens=32,hidden=64,ffn=48,experts=8,top_k=2
f32-odd-sizes tokens=37,hidden=19,ffn=13,experts=5,top_k=3
qwen3_30b_a3b qwen3_30b_a3b,tokens=300
olmoe olmoe,tokens=300
CONFIGS
  # Two experts a launch: chunks past the first read their rows from
  # offsets[first] on (the default, all experts at once, starts at 0).
  compile check-bf16-chunked tokens=37,hidden=64,ffn=48,experts=5,top_k=3,dtype=bf16 \
    --experts-per-chunk=2
  for preset in qwen3_30b_a3b olmoe mixtral; do
    compile "time-$preset" "$preset"
  done
done
du -sh "$out"
