#!/usr/bin/env bash
# The transformer block on CUDA (issue #15, item 3) on the GPU machine (one
# H200, no MLIR there): block artifacts checked against the reference block
# (moe-run reads the spec the artifact records), then qwen3_block timed at
# batch 1, 2 and 4 over 1 and more attention tiles beside a PyTorch block
# (SDPA flash attention, RMSNorm, the team's grouped MoE) in the same call.
#
#   here:          bash bench/block_device.sh compile [DEST]   (artifacts,
#                  their --report-memory plans and the MLIR-free moe-run's
#                  sources into DEST, default .device/block; DEST travels
#                  with `carry`)
#   GPU machine:   bash .device/block/bench/block_device.sh run
#                  (the script finds its folder)
#
# "run" stops starting runs DEADLINE seconds (default 380) after it starts:
# the timing skips what no longer fits, each run has its own time limit. It
# writes $OUT/block_device.log (else ./device-out/), $OUT/block_logs.tar.gz
# (one log a run, the compile-time memory plans) and $OUT/torch_block.json;
# exit status 1 when a check failed.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/bench/moe_run_sources.sh"

# What is timed, BATCH:TILES[:SLICES]; the default is batches 1, 2 and 4
# over 1, 2 and 4 tiles where they divide it. Compile and run must agree.
timed=${TIMED:-1:1 2:1 2:2 4:1 4:2 4:4}
timed_name() { # BATCH:TILES[:SLICES] -> time-bB-tN[-sS]
  local batch tiles slices
  IFS=: read -r batch tiles slices <<< "$1"
  echo "time-b$batch-t$tiles$([ "${slices:-1}" = 1 ] || echo "-s$slices")"
}

if [ "${1:-}" = compile ]; then
  root=$here
  bin=${BUILD_DIR:-$root/build}/bin
  dest=${2:-$root/.device/block}
  rm -rf "$dest" && mkdir -p "$dest/art" "$dest/memory" "$dest/peer"
  # The MLIR-free runtime and moe-run, built there.
  copy_moe_run_sources "$root" "$dest" block_device.sh
  # The peer: our PyTorch block around the team's grouped MoE (not ours).
  cp "$root/bench/torch_block_baseline.py" "$dest/peer/"
  cp "$root/../shared/bench/torch_baselines.py" "$dest/peer/"
  compile() { # NAME SPEC [FLAGS...]: an sm_90a artifact and its memory plan
    local name=$1 spec=$2; shift 2
    # A configuration $TIMED names twice (timed again, alternating) once.
    [ -f "$dest/art/$name.so" ] && return 0
    "$bin/moe-compile" --block "$spec" --target=cuda:sm_90a "$@" \
      --report-memory="$dest/memory/$name.json" -o "$dest/art/$name.so" ||
      { echo "compile of $name FAILED"; exit 1; }
    echo "compiled $name: $spec $*"
  }
  # Checks: f32 (SIMT projections) and bf16 (tensor-core projections);
  # 1, 2 and 4 tiles; one sequence; odd head counts; sequences that are not
  # a multiple of the query block (64, or 32) and span several key blocks;
  # head size 128 as qwen3's; qwen3_block's full widths at a short sequence.
  # The bf16 blocks of head size 64 and 128 run the mma.sync attention
  # (which rounds q, k, v and P to bf16, as FlashAttention does) and again
  # the SIMT one (-simt); they have one expert (top_k=1), so that routing
  # cannot flip on a near tie and y's error is attention's alone.
  # qwen3-short routes over the full MoE with the SIMT attention (f32);
  # qwen3-short-mma is the same with mma.sync: informative, since bf16
  # rounding inside attention can flip a near-tied routing decision.
  while read -r name spec flags; do
    compile "check-$name" "$spec" $flags
  done <<'CONFIGS'
tiny-f32 tiny_block
tiny-bf16 tiny_block,dtype=bf16
tiles1 tiny_block,batch=4,bta_tiles=1
tiles2 tiny_block,batch=4,bta_tiles=2
tiles4 tiny_block,batch=4,bta_tiles=4,dtype=bf16
one-sequence tiny_block,batch=1
odd-heads batch=2,seq=5,heads=6,kv_heads=2,head_dim=4,hidden=24,ffn=8,experts=4,top_k=2
odd-heads-bf16 batch=2,seq=13,heads=6,kv_heads=2,head_dim=8,hidden=48,ffn=16,experts=4,top_k=2,dtype=bf16
long-seq-f32 batch=2,seq=100,heads=4,kv_heads=2,head_dim=64,hidden=128,ffn=64,experts=8,top_k=2
long-seq-bf16 batch=2,seq=150,heads=4,kv_heads=1,head_dim=64,hidden=128,ffn=64,experts=1,top_k=1,dtype=bf16,bta_tiles=2
long-seq-bf16-simt batch=2,seq=150,heads=4,kv_heads=1,head_dim=64,hidden=128,ffn=64,experts=1,top_k=1,dtype=bf16,bta_tiles=2 --flash-attention=simt
dh128-bf16 batch=1,seq=200,heads=8,kv_heads=2,head_dim=128,hidden=256,ffn=128,experts=1,top_k=1,dtype=bf16
dh128-bf16-simt batch=1,seq=200,heads=8,kv_heads=2,head_dim=128,hidden=256,ffn=128,experts=1,top_k=1,dtype=bf16 --flash-attention=simt
qwen3-attn batch=2,seq=130,heads=32,kv_heads=4,head_dim=128,hidden=2048,ffn=64,experts=1,top_k=1,dtype=bf16,bta_tiles=2
qwen3-short qwen3_block,batch=2,seq=64,bta_tiles=2 --flash-attention=simt
qwen3-short-mma qwen3_block,batch=2,seq=64,bta_tiles=2
tiles2-slices tiny_block,batch=4,bta_tiles=2,row_slices=3
long-seq-slices batch=2,seq=100,heads=4,kv_heads=2,head_dim=64,hidden=128,ffn=64,experts=8,top_k=2,row_slices=3
qwen3-short-slices qwen3_block,batch=2,seq=64,bta_tiles=2,row_slices=5 --flash-attention=simt
CONFIGS
  # Timing: qwen3_block at its full sequence (4096), BATCH:TILES[:SLICES]
  # (the MoE's row slices, default 1) from $TIMED (the mma.sync attention);
  # the SIMT attention at batch 1 and 4 for the comparison.
  for item in $timed; do
    IFS=: read -r batch tiles slices <<< "$item"
    compile "$(timed_name "$item")" \
      "qwen3_block,batch=$batch,bta_tiles=$tiles,row_slices=${slices:-1}"
  done
  for batch in 1 4; do
    compile "time-b$batch-t1-simt" "qwen3_block,batch=$batch,bta_tiles=1" \
      --flash-attention=simt
  done
  # The plans' peaks, for the log (the GPU machine has no compiler).
  for f in "$dest"/memory/*.json; do
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1]));
p = r.get("peak_intermediate_bytes", r.get("planned_peak_bytes"));
big = sorted(r["buffers"], key=lambda b: -b["bytes"])[:4]
print("%-22s peak %8.1f MiB; largest: %s" % (sys.argv[1].split("/")[-1][:-5], (p or 0) / 2**20,
  ", ".join("%s %.1f MiB" % (b["name"], b["bytes"] / 2**20) for b in big)))' "$f"
  done | tee "$dest/memory/summary.txt"
  echo "$timed" > "$dest/timed.txt"
  du -sh "$dest"
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 compile [DEST] | run" >&2; exit 2; }

dir=$here
art=$dir/art
out=${OUT:-$PWD/device-out}
logs=/tmp/block-logs
rm -rf "$logs" && mkdir -p "$out" "$logs"
cp -r "$dir/memory" "$logs/"
exec > >(tee "$out/block_device.log") 2>&1
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
start=$(date +%s)
deadline=$((start + ${DEADLINE:-380}))
build_moe_run "$dir" /tmp/block-moe-run || exit 1
run=/tmp/block-moe-run/moe-run
echo "moe-run built in $(($(date +%s) - start)) s; deadline ${DEADLINE:-380} s from the start"
failures=0

# limit SECONDS: the time limit cut to what is left before the deadline
# (0: skip).
limit() {
  local left=$((deadline - $(date +%s)))
  if [ "$left" -lt 10 ]; then echo 0; return; fi
  [ "$1" -gt "$left" ] && echo "$left" || echo "$1"
}

# check NAME SECONDS [info]: the artifact against the reference block
# (info: a failure is reported, not counted).
check() {
  local name=$1 info=${3:-} s t rc
  s=$(limit "$2")
  if [ "$s" = 0 ]; then
    echo "check-$name: CHECK SKIPPED (deadline)"; failures=$((failures + 1)); return
  fi
  t=$(date +%s)
  timeout "$s" "$run" "$art/check-$name.so" --check --seed 1 \
    > "$logs/check-$name.log" 2>&1
  rc=$?
  if [ $rc = 0 ] && grep -q "CHECK PASSED" "$logs/check-$name.log"; then
    echo "check-$name: CHECK PASSED ($(($(date +%s) - t)) s): $(grep -E 'relative error|differ' "$logs/check-$name.log" | sed 's/^ *//' | tr '\n' ' ')"
  else
    [ -n "$info" ] || failures=$((failures + 1))
    echo "check-$name: CHECK FAILED (rc $rc$([ $rc = 124 ] && echo ', timed out'), $(($(date +%s) - t)) s${info:+; informative, not counted})"
    tail -12 "$logs/check-$name.log"
  fi
}

echo "== checks: block artifacts against the reference block ($(date -u +%H:%M:%S))"
# tiny_block and odd heads: the SIMT attention (head sizes 8 and 4); the
# bf16 head sizes 64 and 128: mma.sync, and the same with SIMT (-simt).
for name in tiny-f32 tiny-bf16 tiles1 tiles2 tiles4 one-sequence odd-heads \
    odd-heads-bf16 long-seq-f32 long-seq-bf16 long-seq-bf16-simt dh128-bf16 \
    dh128-bf16-simt; do
  check "$name" 30
done
check qwen3-attn 90
check qwen3-short 90
check qwen3-short-mma 90 info
# The MoE's grouped rows in slices (row_slices), tiled and untiled.
check tiles2-slices 30
check long-seq-slices 30
check qwen3-short-slices 90

# time NAME BATCH: qwen3_block's artifact NAME, --repeat 5 --profile; the
# expert GEMMs' TFLOP/s beside the tokens per expert (T*k/E = T/16 here:
# the gate/up GEMM is 2*T*k*H*2F flops, the down GEMM 2*T*k*F*H).
time_block() {
  local name=$1 batch=$2 s rc tokens ms per
  s=$(limit 75)
  if [ "$s" = 0 ]; then echo "-- $name: SKIPPED (deadline)"; return; fi
  timeout "$s" "$run" "$art/$name.so" --repeat 5 --profile > "$logs/$name.log" 2>&1
  rc=$?
  tokens=$((batch * 4096))
  ms=$(grep -oE 'median [0-9.]+ ms' "$logs/$name.log" | grep -oE '[0-9.]+' | head -1)
  per=$([ -n "$ms" ] && awk -v ms="$ms" -v t="$tokens" 'BEGIN { printf "%.4f us/token", 1000 * ms / t }')
  echo "-- $name (rc $rc$([ $rc = 124 ] && echo ', timed out')): $(grep -E '^time' "$logs/$name.log") ${per:-}"
  grep -E 'device memory|memory: planned' "$logs/$name.log" | sed 's/^/   /'
  grep -E "^$name " "$dir/memory/summary.txt" | sed 's/^/   plan: /'
  awk -v t="$tokens" '$NF ~ /^moek_grouped_matmul_(silu_glu|scatter_add|scatter_store|store)$/ && NF == 4 && $2 ~ /%$/ {
      n = ($NF ~ /silu_glu/) ? 1536 : 2048; k = ($NF ~ /silu_glu/) ? 2048 : 768
      printf "   expert GEMM %s: %.3f ms, %.0f TFLOP/s at %d tokens per expert\n", $NF, $1,
        2 * t * 8 * k * n / ($1 * 1e9), t / 16 }' "$logs/$name.log"
}

echo "== timing: qwen3_block (seq 4096), --repeat 5, beside the compile-time plans ($(date -u +%H:%M:%S))"
[ -f "$dir/timed.txt" ] && timed=$(cat "$dir/timed.txt")
for item in $timed; do
  time_block "$(timed_name "$item")" "${item%%:*}"
done

echo "== PyTorch block (SDPA flash attention, RMSNorm, grouped MoE), bf16 ($(date -u +%H:%M:%S))"
s=$(limit 120)
if [ "$s" = 0 ]; then
  echo "-- torch: SKIPPED (deadline)"
else
  OUT=$out timeout "$s" python3 "$dir/peer/torch_block_baseline.py" 1 2 4 \
    > "$logs/torch_block.log" 2>&1
  echo "-- torch (rc $?):"; sed 's/^/   /' "$logs/torch_block.log" | tail -12
fi

echo "== timing: the SIMT attention (--flash-attention=simt) ($(date -u +%H:%M:%S))"
for batch in 1 4; do time_block "time-b$batch-t1-simt" "$batch"; done

tar -czf "$out/block_logs.tar.gz" -C "$logs" .
echo "== done ($(date -u +%H:%M:%S), $(($(date +%s) - start)) s), check failures: $failures"
exit $((failures > 0))
