#!/usr/bin/env bash
# The training step as the compiler now makes it by default on CUDA (the
# least budget, h saved by the GLU GEMM, the epilogue moe-choose-epilogue
# picks within that peak), checked and timed in one call of the device tool,
# with the PyTorch peers (grouped, ScatterMoE) timed in the same call.
#   bash bench/step_device.sh compile    here: .device/step/*.so
#   OUT=$OUT PEERS=1 bash bench/step_device.sh run    there (carry .device)
# compile: training steps at odd sizes, empty experts, many rows, k = E with
# gelu and capacity, a sigmoid router with the aux loss, the presets at full
# widths and few tokens, f32 (each with the default epilogue, and odd/many
# rows with scatter_add forced too); forwards at odd sizes, empty experts,
# f16, the router and routing plan at E = 40, 128 and 1100 and with NaN
# router keys (inputs of its own: numpy here); then the presets' forwards
# and training steps at full size for
# timing (WITH_SCATTER=1: the steps with scatter_add forced too).
# run: every check-* against the CPU reference (outputs poisoned), every
# time-* (median of REPEAT, default 10, with the per-kernel profile), then
# with PEERS=1 bench/peer_memory.py's grouped and ScatterMoE steps.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.device/step
if [ "${1:-}" = compile ]; then
  set -e
  bin=${BUILD_DIR:-$root/build}/bin
  rm -rf "$dir" && mkdir -p "$dir"
  compile() { # NAME SPEC [FLAGS]
    local name=$1 spec=$2; shift 2
    "$bin/moe-compile" --layer "$spec" --target=cuda:sm_90a -o "$dir/$name.so" "$@" 2>/dev/null
    echo "compiled $name: $spec $*"
  }
  compile check-fwd-odd tokens=77,hidden=200,ffn=136,experts=5,top_k=3,dtype=bf16
  compile check-fwd-odd-gather tokens=77,hidden=200,ffn=136,experts=5,top_k=3,dtype=bf16 --epilogue=gather_sum
  compile check-fwd-empty tokens=8,hidden=64,ffn=32,experts=16,top_k=2,dtype=bf16
  # The routing plan's block passes: several slices, capacity drops, k = 16
  # (1024 threads a block), k = 24 (the per-expert walk), dynamic tokens.
  compile check-fwd-k8 tokens=1000,hidden=64,ffn=32,experts=64,top_k=8,dtype=bf16
  compile check-fwd-capacity tokens=300,hidden=64,ffn=32,experts=16,top_k=8,dtype=bf16,capacity=0.5
  compile check-fwd-k16 tokens=130,hidden=64,ffn=32,experts=32,top_k=16,dtype=bf16
  compile check-fwd-k24 tokens=40,hidden=64,ffn=32,experts=32,top_k=24,dtype=bf16
  compile check-fwd-dynamic tokens=200,hidden=64,ffn=32,experts=16,top_k=4,dtype=bf16,dynamic=1
  # The router and the routing plan at E = 128 and at E = 40 (not a power of
  # two), 1001 tokens: 16 slices, the last one partial.
  compile check-fwd-route-e128 tokens=1001,hidden=64,ffn=32,experts=128,top_k=8,dtype=bf16
  compile check-fwd-route-e40 tokens=1001,hidden=64,ffn=32,experts=40,top_k=6,dtype=bf16
  # The router in the scores GEMM's epilogue (E = 64 or 128): sigmoid keys with a bias,
  # normalized and scaled weights; k = 16, four slots a lane of the quad.
  compile check-fwd-route-e128-sigmoid tokens=1001,hidden=64,ffn=32,experts=128,top_k=8,dtype=bf16,router=sigmoid,bias=1,normalize=1,scaling=2.5
  compile check-fwd-route-e64-k16 tokens=333,hidden=64,ffn=32,experts=64,top_k=16,dtype=bf16
  # NaN router keys (a NaN bias for experts 0, 1 and 33): the router's rule
  # for them (the first available expert is taken when its key is NaN), on
  # inputs of its own (moe-run --inputs).
  nan_spec=tokens=200,hidden=64,ffn=32,experts=64,top_k=4,dtype=bf16,bias=1
  compile check-fwd-nan-bias $nan_spec
  "$bin/moe-run" --layer $nan_spec --seed 3 --dump "$dir/check-fwd-nan-bias.inputs" > /dev/null
  rm -f "$dir"/check-fwd-nan-bias.inputs/result*.npy
  python3 -c "import numpy as np, sys; p = sys.argv[1]; b = np.load(p) * 1e-3; b[[0, 1, 33]] = np.nan; np.save(p, b)" \
    "$dir/check-fwd-nan-bias.inputs/arg4.npy"
  # More experts than the rank block's threads (k = 2: 128): the scan's own
  # launch (one block) instead of each rank block's prefix.
  compile check-fwd-e200-k2 tokens=300,hidden=64,ffn=32,experts=200,top_k=2,dtype=bf16
  # More experts than the ranking's one-block scan takes (1024): the scan a
  # thread an expert, then the offsets' own launch.
  compile check-fwd-e1100 tokens=600,hidden=64,ffn=32,experts=1100,top_k=2,dtype=bf16
  "$bin/moe-compile" "$root/test/Target/CUDA/Inputs/f16-layer.mlir" --target=cuda:sm_90a -o "$dir/check-fwd-f16.so"
  compile check-train-odd tokens=37,hidden=64,ffn=48,experts=5,top_k=3,dtype=bf16 --backward
  # --dispatch=copy: GEMM 1 on a dispatched copy of x's rows (a by TMA), both
  # epilogues with a capacity; hidden 60 keeps the scalar gather_rows.
  compile check-fwd-copy-gather tokens=37,hidden=64,ffn=48,experts=5,top_k=3,dtype=bf16,capacity=0.6 --dispatch=copy --epilogue=gather_sum
  compile check-fwd-copy-scatter tokens=37,hidden=64,ffn=48,experts=5,top_k=3,dtype=bf16,capacity=0.6 --dispatch=copy --epilogue=scatter_add
  compile check-fwd-copy-narrow tokens=50,hidden=60,ffn=48,experts=5,top_k=2,dtype=bf16 --dispatch=copy
  # The staged (TMA-store) epilogues: about 300 rows an expert, so whole
  # 64-row boxes by TMA and an expert's last rows copied out; N = 200 clips
  # the store GEMM's last box; F = 256 (GLU staging needs F % 128 = 0).
  compile check-fwd-staged tokens=600,hidden=200,ffn=256,experts=4,top_k=2,dtype=bf16 --epilogue=gather_sum
  compile check-fwd-staged-gelu-pairs tokens=600,hidden=200,ffn=256,experts=4,top_k=2,dtype=bf16,activation=gelu_glu --epilogue=gather_sum --cuda-cluster=2
  compile check-train-staged tokens=600,hidden=200,ffn=256,experts=4,top_k=2,dtype=bf16 --backward
  compile check-train-staged-pairs tokens=600,hidden=200,ffn=256,experts=4,top_k=2,dtype=bf16 --backward --cuda-cluster=2
  # Every sm_90a GEMM in CTA pairs (--cuda-cluster=2; auto pairs only those
  # whose rows are not gathered): odd rows leave a pair's second CTA empty.
  compile check-fwd-odd-pairs tokens=77,hidden=200,ffn=136,experts=5,top_k=3,dtype=bf16 --cuda-cluster=2
  compile check-train-odd-pairs tokens=37,hidden=64,ffn=48,experts=5,top_k=3,dtype=bf16 --backward --cuda-cluster=2
  compile check-train-odd-scatter tokens=37,hidden=64,ffn=48,experts=5,top_k=3,dtype=bf16 --backward --epilogue=scatter_add
  compile check-train-many tokens=1000,hidden=136,ffn=200,experts=6,top_k=2,dtype=bf16 --backward
  compile check-train-many-scatter tokens=1000,hidden=136,ffn=200,experts=6,top_k=2,dtype=bf16 --backward --epilogue=scatter_add
  # About 60 rows an expert: the weight gradients' side by TMA (experts of
  # 64 rows or more, their last k tile a shifted box) beside experts of
  # fewer rows on cp.async; H = 512 pairs both weight gradients' CTAs.
  compile check-train-mixed-rows tokens=300,hidden=512,ffn=200,experts=10,top_k=2,dtype=bf16 --backward
  compile check-train-empty tokens=4,hidden=32,ffn=16,experts=16,top_k=1,dtype=bf16 --backward
  compile check-train-ke-gelu tokens=50,hidden=64,ffn=40,experts=4,top_k=4,dtype=bf16,activation=gelu_glu,capacity=1.0 --backward
  compile check-train-sigmoid-aux tokens=60,hidden=64,ffn=48,experts=8,top_k=2,dtype=bf16,router=sigmoid,aux_loss=0.01 --backward
  compile check-train-f32 tokens=37,hidden=64,ffn=48,experts=5,top_k=3 --backward
  "$bin/moe-compile" "$root/test/Target/CUDA/Inputs/f16-layer.mlir" --backward --target=cuda:sm_90a -o "$dir/check-train-f16.so" 2>/dev/null
  compile check-train-qwen3 qwen3_30b_a3b,tokens=64 --backward
  compile check-train-olmoe olmoe,tokens=64 --backward
  compile check-train-mixtral mixtral,tokens=16 --backward
  for preset in mixtral qwen3_30b_a3b olmoe; do
    compile "time-fwd-$preset" "$preset"
    compile "time-train-$preset" "$preset" --backward
    [ -n "${WITH_SCATTER:-}" ] &&
      compile "time-train-$preset-scatter" "$preset" --backward --epilogue=scatter_add
  done
  du -sh "$dir"
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 compile | run" >&2; exit 2; }
out=${OUT:-$root/device-out}
mkdir -p "$out/step"
exec > >(tee "$out/step_device.log") 2>&1
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%MZ)"
source "$root/bench/moe_run_sources.sh"
build_moe_run "$root" /tmp/moe-run-build-step || exit 1
run=/tmp/moe-run-build-step/moe-run
failures=0
run_checks "$run" "$dir" "$out/step"
echo "== timing ($(date -u +%H:%M:%S)), GPU: $(nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader)"
run_timings "$run" "$dir" "$out/step"
if [ "${PEERS:-0}" = 1 ]; then
  echo "== peers ($(date -u +%H:%M:%S))"
  PYTHONPATH="$root/.device/scattermoe:$root/.device" timeout 300 \
    python3 "$root/bench/peer_memory.py" --impls grouped,scatter mixtral qwen3_30b_a3b olmoe || failures=$((failures + 1))
fi
echo "== done ($(date -u +%H:%M:%S)), failures: $failures"
