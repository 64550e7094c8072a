#!/usr/bin/env bash
# Calibrates the cost model's "cpu" device on this machine: compiles a few
# small layers (forward and training step) with --report-cost, times each
# with moe-run --repeat (the CPU has no per-kernel profile, so a run's whole
# time calibrates the default class), and fits the table's cpu rows
# (bench/calibrate_cost_model.py fit --write). Takes about a minute; the
# profile it fitted is kept in bench/logs/profile-cpu.json.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BUILD_DIR:-$root/build}/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/costs" "$work/logs"
i=0
while read -r spec; do
  for mode in fwd train; do
    name=cpu-$i-$mode
    flags=""
    [ $mode = train ] && flags=--backward
    "$bin/moe-compile" --layer "$spec" --target=cpu $flags -o "$work/$name.so" \
      --report-cost="$work/costs/$name.json"
    "$bin/moe-run" "$work/$name.so" --repeat "${REPEAT:-5}" > "$work/logs/$name.log"
    echo "$name ($spec): $(grep '^time' "$work/logs/$name.log")"
  done
  i=$((i + 1))
done <<'SPECS'
tokens=256,hidden=128,ffn=64,experts=8,top_k=2
tokens=512,hidden=256,ffn=128,experts=16,top_k=2,dtype=bf16
tokens=128,hidden=256,ffn=128,experts=64,top_k=8,dtype=bf16
tokens=1024,hidden=128,ffn=256,experts=8,top_k=2
SPECS
python3 "$root/bench/calibrate_cost_model.py" collect "$work"/logs/*.log \
  --device cpu -o "$root/bench/logs/profile-cpu.json"
python3 "$root/bench/calibrate_cost_model.py" fit "$root/bench/logs/profile-cpu.json" \
  --costs "$work/costs" ${WRITE:+--write}
