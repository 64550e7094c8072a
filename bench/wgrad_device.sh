#!/usr/bin/env bash
# The weight gradients dw1, dw2 on sm_90a's wgmma kernel
# (GroupedWeightGradWarpgroup.cpp, moek_grouped_weight_grad_warpgroup) on
# the GPU machine (one GPU, no MLIR there): training steps checked against
# the reference backward, then the full-size steps timed with each kernel's
# share, the wgmma artifacts beside sm_90 (mma.sync) ones of the same layers
# so that the two weight-gradient kernels are compared in one call.
#
#   here:          bash bench/wgrad_device.sh compile [DEST]   (artifacts and
#                  the MLIR-free moe-run's sources into DEST, default
#                  .device/wgrad; DEST travels with `carry`)
#   GPU machine:   bash .device/wgrad/bench/wgrad_device.sh run
#                  (the script finds its folder)
#
# "run" keeps under BUDGET seconds (default 205; about 170 used when all
# passes) after building moe-run (6-20 s):
# every command has a time limit cut to what is left. It writes
# $OUT/wgrad_device.log (else ./device-out/) and $OUT/wgrad_logs.tar.gz (one
# log per run); exit status 1 when a check failed.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/bench/moe_run_sources.sh"

if [ "${1:-}" = compile ]; then
  root=$here
  bin=${BUILD_DIR:-$root/build}/bin
  dest=${2:-$root/.device/wgrad}
  rm -rf "$dest" && mkdir -p "$dest/art/sm_90a" "$dest/art/sm_90"
  # The MLIR-free runtime and moe-run, built there.
  copy_moe_run_sources "$root" "$dest" wgrad_device.sh
  compile() { # CHIP NAME SOURCE FLAGS... (SOURCE: a spec, or an .mlir file)
    local chip=$1 name=$2 source=$3; shift 3
    local input=(--layer "$source")
    case $source in *.mlir) input=("$source") ;; esac
    "$bin/moe-compile" "${input[@]}" --backward --target="cuda:$chip" "$@" \
      -o "$dest/art/$chip/$name.so" ||
      { echo "compile of $chip/$name FAILED"; exit 1; }
    echo "compiled $chip/$name: $source --backward $*"
  }
  # Checks (sm_90a): partial tiles along M and N (H = 200, 2F = 272) and
  # about 46 rows an expert; 12 of 16 experts without rows (dw[e] = 0);
  # several k tiles an expert (the ring wrapping inside a tile); two experts
  # a launch (rows from offsets[first] on); dynamic tokens; f16; the presets'
  # full H, F, E, k (thousands of tiles: each CTA walks ~90, the ring wraps
  # across tiles).
  while read -r name spec flags; do
    compile sm_90a "check-$name" "$spec" $flags
  done <<'CONFIGS'
odd tokens=77,hidden=200,ffn=136,experts=5,top_k=3,dtype=bf16
empty-experts tokens=4,hidden=256,ffn=128,experts=16,top_k=4,dtype=bf16
many-rows tokens=1000,hidden=136,ffn=200,experts=6,top_k=2,dtype=bf16
chunked tokens=77,hidden=200,ffn=136,experts=5,top_k=3,dtype=bf16 --experts-per-chunk=2
dynamic tokens=77,hidden=64,ffn=48,experts=8,top_k=2,dtype=bf16,dynamic=1
qwen3_30b_a3b qwen3_30b_a3b,tokens=64
olmoe olmoe,tokens=64
CONFIGS
  compile sm_90a check-f16 "$root/test/Target/CUDA/Inputs/f16-layer.mlir"
  # Timing: the full-size training steps, wgmma (sm_90a) and mma.sync
  # (sm_90) weight gradients.
  for preset in qwen3_30b_a3b olmoe mixtral; do
    compile sm_90a "time-$preset" "$preset"
    compile sm_90 "time-$preset" "$preset"
  done
  du -sh "$dest"
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 compile [DEST] | run" >&2; exit 2; }

dir=$here
art=$dir/art
out=${OUT:-$PWD/device-out}
logs=/tmp/wgrad-logs
rm -rf "$logs" && mkdir -p "$out" "$logs"
exec > >(tee "$out/wgrad_device.log") 2>&1
echo "== device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
t0=$(date +%s)
build_moe_run "$dir" /tmp/wgrad-moe-run || exit 1
run=/tmp/wgrad-moe-run/moe-run
start=$(date +%s) deadline=$(($(date +%s) + ${BUDGET:-205}))
echo "moe-run built in $((start - t0)) s; budget ${BUDGET:-205} s from here"
failures=0 timeouts=0

# limit NAME SECONDS: the time limit cut to what is left (0: skip).
limit() {
  local left=$((deadline - $(date +%s)))
  if [ "$left" -lt 5 ] || [ "$timeouts" -ge 2 ]; then echo 0; return; fi
  [ "$2" -gt "$left" ] && echo "$left" || echo "$2"
}

# check NAME SECONDS: the sm_90a training step NAME against the reference
# backward.
check() {
  local name=$1 s t rc
  s=$(limit "$name" "$2")
  if [ "$s" = 0 ]; then
    echo "check-$name: SKIPPED (budget or two timeouts)"; failures=$((failures + 1)); return
  fi
  t=$(date +%s)
  timeout "$s" "$run" "$art/sm_90a/check-$name.so" --backward --check --seed 1 \
    > "$logs/check-$name.log" 2>&1
  rc=$?
  if [ $rc = 0 ]; then
    echo "check-$name: ok ($(($(date +%s) - t)) s): $(grep -oE '\((dx|dw_gate|dw1|dw2)\): relative error [^ ]*' "$logs/check-$name.log" | sed 's/: relative error / /' | tr '\n' ' ')"
  else
    failures=$((failures + 1))
    [ $rc = 124 ] && timeouts=$((timeouts + 1))
    echo "check-$name: FAILED (rc $rc, $(($(date +%s) - t)) s)"; tail -12 "$logs/check-$name.log"
  fi
}

# Small layers first (a second each: a hang shows in 30 s), then the timing,
# then the presets' full H, F, E, k at 64 tokens (the CPU reference takes
# ~35 s each).
echo "== checks: sm_90a training steps against the reference backward ($(date -u +%H:%M:%S))"
for name in odd empty-experts many-rows chunked dynamic f16; do check "$name" 30; done

echo "== timing: full-size training steps, --repeat 10 --profile, sm_90 (mma.sync weight gradients) then sm_90a (wgmma) ($(date -u +%H:%M:%S))"
summary=""
for preset in qwen3_30b_a3b olmoe mixtral; do
  for chip in sm_90 sm_90a; do
    name=$chip-time-$preset
    s=$(limit "$name" 45)
    if [ "$s" = 0 ]; then echo "-- $name: SKIPPED (budget)"; continue; fi
    timeout "$s" "$run" "$art/$chip/time-$preset.so" --backward --repeat 10 --profile \
      > "$logs/$name.log" 2>&1
    rc=$?
    [ $rc = 124 ] && timeouts=$((timeouts + 1))
    echo "-- $name (rc $rc): $(grep -E '^time' "$logs/$name.log")"
    # The profile's kernels (ms per run, share, launches, name), then the
    # cost model's predictions beside the measurements.
    sed -n '/^profile/,/^prediction/p' "$logs/$name.log" | head -12
    grep -E 'grouped_weight_grad' "$logs/$name.log" | sed 's/^/   /'
    wg=$(awk 'NF == 4 && $2 ~ /%$/ && $NF ~ /^moek_grouped_weight_grad(_warpgroup)?$/ { s += $1 } END { if (s) printf "%.3f", s }' "$logs/$name.log")
    summary="$summary$name: weight gradients ${wg:-?} ms, $(grep -oE 'median [0-9.]+ ms' "$logs/$name.log")
"
  done
done
echo "== checks at the presets' full H, F, E, k ($(date -u +%H:%M:%S))"
for name in qwen3_30b_a3b olmoe; do check "$name" 60; done
echo "check failures: $failures"

echo "== summary (weight-gradient kernels' ms per step, from the profiles)"
printf '%s' "$summary"
tar -czf "$out/wgrad_logs.tar.gz" -C "$logs" .
echo "== done ($(date -u +%H:%M:%S), $(($(date +%s) - start)) s after the build), check failures: $failures"
exit $((failures > 0))
