#!/usr/bin/env bash
# Branches against main in one call of the device tool: each branch's GPU
# checks (bench/step_device.sh's: outputs NaN-poisoned, CPU reference), then
# the presets' forwards and training steps alternating with main's builds
# (bench/ab_device.sh, with the per-kernel profile).
#   here:  bash bench/branches_device.sh compile BRANCH...
#          checks each branch out in turn (the work tree must be clean),
#          builds it in build/ and compiles step_device.sh's artifacts; main
#          last, its timing artifacts only; back on the branch it started on.
#          -> .device/branches/BRANCH.tar.xz (the branch's checks, about
#             1 MB), .device/ab/{BRANCH,main}-{fwd,train}-PRESET.so
#   there: OUT=$OUT bash bench/branches_device.sh run
#          (carry .device/branches and .device/ab; about 40 s of checks a
#          branch, then ROUNDS (default 2) of every preset's forward and
#          step for main and each branch: about 300 s for two branches;
#          CONFIGS="fwd-qwen3_30b_a3b ..." times only those)
# Logs under $OUT: checks-BRANCH.log for each branch, ab_device.log.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
branches=$root/.device/branches
ab=$root/.device/ab

if [ "${1:-}" = compile ]; then
  shift
  [ $# -gt 0 ] || { echo "usage: $0 compile BRANCH..." >&2; exit 2; }
  if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
    echo "$0: the work tree has changes; commit or stash them first" >&2
    exit 2
  fi
  start=$(git -C "$root" rev-parse --abbrev-ref HEAD)
  rm -rf "$branches" "$ab" && mkdir -p "$branches" "$ab"
  for branch in "$@" main; do
    echo "== $branch ($(git -C "$root" rev-parse --short "$branch"))"
    git -C "$root" checkout -q "$branch" &&
      ninja -C "$root/build" > /tmp/branches-build.log 2>&1 &&
      bash "$root/bench/step_device.sh" compile > /tmp/branches-compile.log 2>&1 ||
      { tail -20 /tmp/branches-build.log /tmp/branches-compile.log
        git -C "$root" checkout -q "$start"; exit 1; }
    for kind in fwd train; do
      for preset in mixtral qwen3_30b_a3b olmoe; do
        mv "$root/.device/step/time-$kind-$preset.so" "$ab/$branch-$kind-$preset.so"
      done
    done
    if [ "$branch" != main ]; then
      rm -f "$root"/.device/step/time-* "$root/.device/step/check-train-mixtral.so"
      tar -C "$root/.device" -cJf "$branches/$branch.tar.xz" step
    fi
  done
  git -C "$root" checkout -q "$start"
  du -sh "$branches" "$ab"
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 compile BRANCH... | run" >&2; exit 2; }
out=${OUT:-$root/device-out}
mkdir -p "$out"
sides=main
for archive in "$branches"/*.tar.xz; do
  branch=$(basename "$archive" .tar.xz)
  sides="$sides $branch"
  rm -rf "$root/.device/step" && tar -C "$root/.device" -xJf "$archive"
  OUT=$out/checks-$branch CHECK_TIMEOUT=${CHECK_TIMEOUT:-60} \
    bash "$root/bench/step_device.sh" run > /dev/null 2>&1
  mv "$out/checks-$branch/step_device.log" "$out/checks-$branch.log"
  rm -rf "$out/checks-$branch"
  echo "== $branch: $(grep -c 'OK;' "$out/checks-$branch.log") checks passed," \
    "$(grep -c ': FAILED' "$out/checks-$branch.log") failed"
done
OUT=$out SIDES=$sides ROUNDS=${ROUNDS:-2} PROFILE_LINES=${PROFILE_LINES:-3} \
  bash "$root/bench/ab_device.sh" ${CONFIGS:-fwd-mixtral fwd-qwen3_30b_a3b fwd-olmoe \
  train-mixtral train-qwen3_30b_a3b train-olmoe} > /dev/null 2>&1
rm -rf "$out/ab"
grep -E '^-- round|routing:' "$out/ab_device.log"
