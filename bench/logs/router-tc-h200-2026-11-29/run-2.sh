#!/usr/bin/env bash
# router-tc on the GPU machine, call 2: the full-size training steps (this
# branch vs main) first, then the remaining checks against the reference.
here=.device/router-tc
out=${OUT:-/tmp/out}; mkdir -p "$out"
exec > >(tee "$out/router-tc-device-2.log") 2>&1
echo "== $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
if [ ! -x /tmp/mr/moe-run ]; then
  cp "$here/RunMain.cpp" tools/moe-run/RunMain.cpp
  cmake -S tools/moe-run -B /tmp/mr -G Ninja -DCMAKE_BUILD_TYPE=Release >/tmp/cmake.log || { cat /tmp/cmake.log; exit 1; }
  ninja -C /tmp/mr >/tmp/ninja.log || { tail -30 /tmp/ninja.log; exit 1; }
fi
echo "== moe-run ready $(date -u +%H:%M:%S)"
for a in $here/full-new-qwen3_30b_a3b.so $here/full-main-qwen3_30b_a3b.so $here/full-new-olmoe.so $here/full-main-olmoe.so; do
  n=$(basename "$a" .so)
  echo "-- $n"
  timeout 30 /tmp/mr/moe-run "$a" --backward --repeat 5 --profile 2>&1 | grep -vE '^function|^inputs'
  echo "-- $n rc=${PIPESTATUS[0]} $(date -u +%H:%M:%S)"
done
for a in $here/check-*.so; do
  n=$(basename "$a" .so)
  timeout 40 /tmp/mr/moe-run "$a" --backward --check --seed 1 > /tmp/$n.log 2>&1; rc=$?
  echo "$n rc=$rc: $(grep -oE '\((dx|dw_gate|dw1|dw2|y)\): relative error [^ ]*' /tmp/$n.log | sed 's/: relative error / /' | tr '\n' ' ') $(grep -E 'CHECK' /tmp/$n.log)"
  [ $rc = 0 ] || tail -8 /tmp/$n.log
done
echo "== done $(date -u +%H:%M:%S)"
