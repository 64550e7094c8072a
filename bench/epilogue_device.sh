#!/usr/bin/env bash
# The gather_sum epilogue on the GPU (one H200, no MLIR there) and what
# moe-choose-epilogue (--epilogue=auto) picks: layers and
# training steps checked against the reference with gather_sum forced, then
# the presets' forward and training step timed with scatter_add beside the
# auto choice, each with its per-kernel profile and the cost model's
# prediction.
#
#   here:          bash bench/epilogue_device.sh compile [DEST]   (artifacts and
#                  the MLIR-free moe-run's sources into DEST, default
#                  .device/epilogue; DEST travels with `carry`)
#   GPU machine:   bash .device/epilogue/bench/epilogue_device.sh run
#
# "run" keeps under BUDGET seconds (default 200) after building moe-run;
# writes $OUT/epilogue_device.log and $OUT/epilogue_logs.tar.gz; exit
# status 1 when a check failed.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/bench/moe_run_sources.sh"

if [ "${1:-}" = compile ]; then
  root=$here
  bin=${BUILD_DIR:-$root/build}/bin
  dest=${2:-$root/.device/epilogue}
  rm -rf "$dest" && mkdir -p "$dest/art"
  copy_moe_run_sources "$root" "$dest" epilogue_device.sh
  compile() { # NAME SPEC FLAGS...
    local name=$1 spec=$2; shift 2
    "$bin/moe-compile" --layer "$spec" --target=cuda:sm_90a "$@" \
      -o "$dest/art/$name.so" 2> "$dest/art/$name.remarks" ||
      { cat "$dest/art/$name.remarks"; echo "compile of $name FAILED"; exit 1; }
    echo "compiled $name: $spec $* ($(grep -o 'moe-choose-epilogue: [a-z_]* (.*' "$dest/art/$name.remarks" || echo "epilogue given"))"
  }
  # Checks, gather_sum forced: wgmma with many rows, odd sizes (the SIMT
  # GEMMs), a capacity (dropped rows), k = E, f32, the presets' full H, F,
  # E, k; training steps with gather_sum.
  while read -r name spec flags; do
    compile "check-$name" "$spec" --epilogue=gather_sum $flags
  done <<'CONFIGS'
bf16 tokens=1000,hidden=256,ffn=128,experts=16,top_k=4,dtype=bf16
odd tokens=77,hidden=200,ffn=136,experts=5,top_k=3,dtype=bf16
capacity tokens=256,hidden=256,ffn=128,experts=16,top_k=2,dtype=bf16,capacity=0.5
k-equals-e tokens=64,hidden=64,ffn=32,experts=4,top_k=4,dtype=bf16
f32 tokens=64,hidden=64,ffn=32,experts=8,top_k=2
qwen3_30b_a3b qwen3_30b_a3b,tokens=64
olmoe olmoe,tokens=64
train-bf16 tokens=256,hidden=256,ffn=128,experts=16,top_k=4,dtype=bf16 --backward
train-odd tokens=77,hidden=200,ffn=136,experts=5,top_k=3,dtype=bf16 --backward
train-qwen3_30b_a3b qwen3_30b_a3b,tokens=64 --backward
CONFIGS
  # Timing: scatter_add beside auto (what the compiler now picks).
  for preset in qwen3_30b_a3b olmoe mixtral; do
    compile "time-$preset-scatter_add" "$preset" --epilogue=scatter_add
    compile "time-$preset-auto" "$preset" --epilogue=auto
  done
  for preset in qwen3_30b_a3b olmoe; do
    compile "train-$preset-scatter_add" "$preset" --backward --epilogue=scatter_add
    compile "train-$preset-auto" "$preset" --backward --epilogue=auto
  done
  du -sh "$dest"
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 compile [DEST] | run" >&2; exit 2; }

dir=$here
art=$dir/art
out=${OUT:-$PWD/device-out}
logs=/tmp/epilogue-logs
rm -rf "$logs" && mkdir -p "$out" "$logs"
exec > >(tee "$out/epilogue_device.log") 2>&1
trap 'tar czf "$out/epilogue_logs.tar.gz" -C "$logs" . 2>/dev/null' EXIT
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
build_moe_run "$dir" /tmp/epilogue-moe-run || exit 1
run=/tmp/epilogue-moe-run/moe-run
deadline=$(($(date +%s) + ${BUDGET:-200}))
failures=0
left() { echo $((deadline - $(date +%s))); }

echo "== checks, gather_sum forced, NaN-poisoned outputs ($(date -u +%H:%M:%S))"
for a in "$art"/check-*.so; do
  name=$(basename "$a" .so)
  flags=(--check --seed 1)
  case $name in *train*) flags+=(--backward) ;; esac
  [ "$(left)" -lt 10 ] && { echo "$name: SKIPPED (budget)"; failures=$((failures + 1)); continue; }
  timeout 60 "$run" "$a" "${flags[@]}" > "$logs/$name.log" 2>&1
  rc=$?
  if [ $rc = 0 ] && grep -q "CHECK PASSED" "$logs/$name.log"; then
    echo "$name: CHECK PASSED $(grep -oE 'relative error [^ ]*' "$logs/$name.log" | head -1)"
  else
    failures=$((failures + 1))
    echo "$name: FAILED (rc $rc)"; tail -8 "$logs/$name.log"
  fi
done

echo "== timing, --repeat 20 (forward) / 10 (training step) --profile ($(date -u +%H:%M:%S))"
for a in "$art"/time-*.so "$art"/train-*.so; do
  name=$(basename "$a" .so)
  flags=(--repeat 20 --profile)
  case $name in train-*) flags=(--backward --repeat 10 --profile) ;; esac
  s=$(left); [ "$s" -gt 60 ] && s=60
  [ "$s" -lt 10 ] && { echo "-- $name: SKIPPED (budget)"; continue; }
  timeout "$s" "$run" "$a" "${flags[@]}" > "$logs/$name.log" 2>&1
  echo "-- $name (rc $?): $(grep -E '^time' "$logs/$name.log")"
  grep -E "moek_grouped_matmul|moek_combine_rows|^prediction" "$logs/$name.log" | head -6
done
echo "== $failures check failures ($(date -u +%H:%M:%S))"
[ "$failures" = 0 ]
