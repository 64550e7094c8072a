#!/usr/bin/env bash
# Zero-buffer fusion against the materializing lowering, side by side in one
# run: the compiler's planned peak of intermediate memory for the full-size
# presets (forward; nothing is executed), and CPU time of both on a small
# preset. Prints Markdown for bench/RESULTS.md.
#   bench/fusion_cpu.sh [SMALL_SPEC] [REPEAT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BUILD_DIR:-$root/build}/bin
small=${1:-olmoe,tokens=256,hidden=256,ffn=128}
repeat=${2:-20}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

peak() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["peak_intermediate_bytes"])' "$1"; }
mib() { python3 -c 'import sys; print(f"{int(sys.argv[1]) / 2**20:.1f}")' "$1"; }

echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; date: $(date -u +%Y-%m-%d)"
echo
echo "| preset (T, H, F, E, k), bf16 | unfused peak MiB | fused peak MiB | fused / unfused |"
echo "|---|---|---|---|"
for preset in mixtral qwen3_30b_a3b olmoe; do
  "$bin/moe-compile" --layer "$preset" --no-fusion --report-memory="$tmp/unfused.json"
  "$bin/moe-compile" --layer "$preset" --report-memory="$tmp/fused.json"
  u=$(peak "$tmp/unfused.json"); f=$(peak "$tmp/fused.json")
  ratio=$(python3 -c "import sys; print(f'{int(sys.argv[1]) / int(sys.argv[2]):.1%}')" "$f" "$u")
  echo "| $preset | $(mib "$u") | $(mib "$f") | $ratio |"
done

echo
echo "CPU time, \`$small\`, median of $repeat runs after a warm-up, both checked against the reference:"
echo
echo "| pipeline | median ms | GFLOP/s | rel. error of y | planned peak |"
echo "|---|---|---|---|---|"
for round in 1 2; do
  for mode in unfused fused; do
    flag=""; [ "$mode" = unfused ] && flag="--no-fusion"
    out=$("$bin/moe-run" --layer "$small" $flag --check --repeat "$repeat")
    ms=$(echo "$out" | sed -n 's/^time: median \([0-9.]*\) ms.*/\1/p')
    gf=$(echo "$out" | sed -n 's/.*; \([0-9.]*\) GFLOP\/s.*/\1/p')
    err=$(echo "$out" | sed -n 's/.*(y): relative error \([^ ]*\) .*/\1/p')
    mem=$(echo "$out" | sed -n 's/^memory: planned intermediates peak at \([0-9.]* [KMG]*i*B\).*/\1/p')
    [ "$round" = 2 ] && echo "| $mode | $ms | $gf | $err | $mem |"
  done
done
