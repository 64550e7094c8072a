#!/usr/bin/env bash
# Compiles, here (where MLIR is), the CUDA artifacts bench/run_device.sh runs
# on the GPU machine (which has no MLIR), into .device/artifacts/:
#   time-PRESET*.so    the full-size presets (forward), for timing and
#                      profiles: the default schedule, one expert per
#                      chunk, unfused
#   tile-PRESET-TILE.so  the same with other tensor-core tiles (tuning)
#   check-PRESET.so    the presets at a few tokens, for --check against the
#                      CPU reference (whose naive loops are slow at full size)
#   config-NAME.so     the CPU end-to-end configurations, for --check
#   config-train-NAME.so  the training step (--backward) of some of them, which
#                      --check compares with the reference backward
#   time-train-PRESET.so  with TRAINING=1: the presets' training step, timed
#                      and profiled as the forward is
# TARGET picks the chip (default cuda:sm_90; cuda:sm_90a for wgmma and TMA);
# COMPARE="cuda:sm_90 ..." adds time-PRESET-CHIP.so for those targets, to
# time them in the same call; QUICK=1 leaves out the chunk1 and unfused
# variants; EPILOGUES="gather_sum" adds time-PRESET-EPILOGUE.so and
# check-PRESET-EPILOGUE.so (moe-compile --epilogue).
# Also copies ../shared/bench/torch_baselines.py and GoogleTest's sources next
# to them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BUILD_DIR:-$root/build}/bin
out=$root/.device/artifacts
target=${TARGET:-cuda:sm_90}
rm -rf "$out" && mkdir -p "$out"

compile() { # NAME SPEC [FLAGS]
  local name=$1 spec=$2; shift 2
  "$bin/moe-compile" --layer "$spec" --target="$target" -o "$out/$name.so" "$@"
  echo "compiled $name: $spec $*"
}
for preset in mixtral qwen3_30b_a3b olmoe; do
  # The CUDA default: all experts' GEMMs in one launch each.
  compile "time-$preset" "$preset"
  # One expert at a time: the smallest activation buffer, T x F.
  for epilogue in ${EPILOGUES-}; do
    compile "time-$preset-$epilogue" "$preset" --epilogue="$epilogue"
  done
  for other in ${COMPARE-}; do
    target=$other compile "time-$preset-${other#cuda:}" "$preset"
  done
  [ "${TRAINING:-0}" = 1 ] && compile "time-train-$preset" "$preset" --backward
  [ "${QUICK:-0}" = 1 ] && continue
  compile "time-$preset-chunk1" "$preset" --experts-per-chunk=1
  compile "time-$preset-unfused" "$preset" --no-fusion
done
# Tensor-core tiles to compare with the default 128x128x32x3 (TILES="" skips).
for tile in ${TILES-128x128x32x3 128x256x32x3x2x4 128x256x64x3x2x4}; do
  for preset in qwen3_30b_a3b olmoe; do
    compile "tile-$preset-$tile" "$preset" --cuda-tile="$tile"
  done
done
compile check-mixtral mixtral,tokens=16
compile check-qwen3_30b_a3b qwen3_30b_a3b,tokens=64
compile check-olmoe olmoe,tokens=64
compile check-olmoe-chunk1 olmoe,tokens=64 --experts-per-chunk=1
for epilogue in ${EPILOGUES-}; do
  compile "check-mixtral-$epilogue" mixtral,tokens=16 --epilogue="$epilogue"
  compile "check-qwen3_30b_a3b-$epilogue" qwen3_30b_a3b,tokens=200 --epilogue="$epilogue"
  compile "check-olmoe-$epilogue" olmoe,tokens=300 --epilogue="$epilogue"
done
compile check-olmoe-tile-128x256x64x3x2x4 olmoe,tokens=300 --cuda-tile=128x256x64x3x2x4
while read -r name spec; do
  compile "config-$name" "$spec"
done <<'CONFIGS'
softmax tokens=32,hidden=64,ffn=48,experts=8,top_k=2
sigmoid-bias tokens=32,hidden=64,ffn=48,experts=8,top_k=2,router=sigmoid,bias=1
k1 tokens=32,hidden=64,ffn=48,experts=8,top_k=1
k-eq-e tokens=16,hidden=32,ffn=24,experts=4,top_k=4
capacity tokens=64,hidden=32,ffn=24,experts=4,top_k=2,capacity=0.5
capacity-many-slices tokens=700,hidden=32,ffn=16,experts=4,top_k=2,capacity=0.7
dropless-many-slices tokens=1000,hidden=32,ffn=16,experts=16,top_k=4,dtype=bf16
normalize-off-scaling tokens=32,hidden=64,ffn=48,experts=8,top_k=2,normalize=0,scaling=2.5
gelu tokens=32,hidden=64,ffn=48,experts=8,top_k=2,activation=gelu_glu
bf16 tokens=32,hidden=64,ffn=48,experts=8,top_k=2,dtype=bf16
bf16-odd-rows tokens=37,hidden=64,ffn=48,experts=5,top_k=3,dtype=bf16
bf16-capacity tokens=64,hidden=64,ffn=32,experts=4,top_k=2,capacity=0.5,dtype=bf16,activation=gelu_glu
dynamic tokens=32,hidden=64,ffn=48,experts=8,top_k=2,dynamic=1
odd-sizes tokens=37,hidden=19,ffn=13,experts=5,top_k=3
single-token tokens=1,hidden=32,ffn=16,experts=4,top_k=2
empty-experts tokens=4,hidden=32,ffn=16,experts=16,top_k=1
many-experts tokens=300,hidden=64,ffn=32,experts=256,top_k=8,dtype=bf16
tall-scores tokens=16384,hidden=256,ffn=64,experts=128,top_k=8,dtype=bf16
tall-scores-sigmoid tokens=13000,hidden=128,ffn=32,experts=96,top_k=6,dtype=bf16,router=sigmoid,bias=1
grouped tokens=32,hidden=32,ffn=16,experts=8,top_k=2,router=sigmoid,bias=1,n_group=4,topk_group=2
CONFIGS
# f16 operands on tensor cores (the layer specs make f32 or bf16).
"$bin/moe-compile" "$root/test/Target/CUDA/Inputs/f16-layer.mlir" \
  --target="$target" -o "$out/config-f16.so"
echo "compiled config-f16: test/Target/CUDA/Inputs/f16-layer.mlir"
# The training step (tensor-core backward GEMMs for bf16; f32 and odd sizes
# keep the SIMT fallbacks); bench/compile_backward_artifacts.sh +
# bench/backward_device.sh check more training configurations and time them.
while read -r name spec; do
  compile "config-train-$name" "$spec" --backward
done <<'TRAIN'
softmax tokens=32,hidden=64,ffn=48,experts=8,top_k=2
sigmoid-bias-aux tokens=32,hidden=64,ffn=48,experts=8,top_k=2,router=sigmoid,bias=1,aux_loss=0.01
capacity tokens=64,hidden=32,ffn=24,experts=4,top_k=2,capacity=0.5
gelu-scaling tokens=32,hidden=64,ffn=48,experts=8,top_k=2,activation=gelu_glu,normalize=0,scaling=2.5
bf16 tokens=32,hidden=64,ffn=48,experts=8,top_k=2,dtype=bf16
bf16-odd-rows tokens=37,hidden=64,ffn=48,experts=5,top_k=3,dtype=bf16
bf16-empty-experts tokens=4,hidden=32,ffn=16,experts=16,top_k=1,dtype=bf16
bf16-many-experts tokens=300,hidden=64,ffn=32,experts=256,top_k=8,dtype=bf16
odd-sizes tokens=37,hidden=19,ffn=13,experts=5,top_k=3
empty-experts tokens=4,hidden=32,ffn=16,experts=16,top_k=1
grouped tokens=32,hidden=32,ffn=16,experts=8,top_k=2,router=sigmoid,bias=1,n_group=4,topk_group=2
TRAIN
cp "$root/../shared/bench/torch_baselines.py" "$out/../torch_baselines.py"
# GoogleTest's sources (libgtest-dev), for the runtime's unit tests there.
if [ -d /usr/src/googletest ]; then
  rm -rf "$out/../googletest" && cp -r /usr/src/googletest "$out/../googletest"
fi
du -sh "$out"
