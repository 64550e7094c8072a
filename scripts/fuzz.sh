#!/usr/bin/env bash
# The libFuzzer targets of test/Fuzz (README.md, "Fuzzing").
#
#   scripts/fuzz.sh build                     configure (once) and build them
#   scripts/fuzz.sh regress                   build, replay every corpus, then a
#                                             short mutation run of each target
#                                             (what scripts/test.sh runs)
#   scripts/fuzz.sh long SECONDS [TARGET...]  SECONDS of fuzzing per target (all
#                                             by default), crashes kept, new
#                                             coverage merged into the corpus
#   scripts/fuzz.sh prune [TARGET...]         keep of the corpus the seeds
#                                             (seed-*), the inputs of found bugs
#                                             (found-*) and the small inputs that
#                                             add coverage
#
# The build goes to build-fuzz/ (FUZZ_BUILD_DIR), with clang-22 (CC, CXX),
# ASan and UBSan, JOBS parallel jobs (default: the cores). Environment:
#   FUZZ_SECONDS   length of each mutation run of `regress` (default 20)
#   FUZZ_OUT       where `long` writes (default build-fuzz/long-DATE)
#   FUZZ_PARALLEL  targets run at once (regress: default JOBS; long: 1)
#   FUZZ_TIMEOUT   seconds one input may take before it counts as a hang
#                  (default 10)
#   MOE_FUZZ_SKIP_KNOWN  the script sets it to 1 so that inputs of the open
#                  bugs listed in test/Fuzz/FuzzKnown.h are skipped (a run
#                  would otherwise find them again and again); 0 finds them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${JOBS:-$(nproc)}
bin=$build/bin
corpus_root=$root/test/Fuzz/corpus
crash_root=$root/test/Fuzz/crashes
targets=(moe-fuzz-npy moe-fuzz-artifact-metadata moe-fuzz-layer-spec moe-fuzz-ir)
export MOE_FUZZ_SKIP_KNOWN=${MOE_FUZZ_SKIP_KNOWN:-1}
# A UBSan or ASan report is a crash with a stack; leaks of a run are findings
# too (libFuzzer checks them).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_odr_violation=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

usage() {
  sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The libFuzzer options of every run: a hang or a blow-up is a finding.
common=(-timeout=${FUZZ_TIMEOUT:-10} -rss_limit_mb=4096 -malloc_limit_mb=2048 -print_final_stats=1)

# A target's options: its dictionary, if it has one, and its largest input.
target_options() {
  local dict=$root/test/Fuzz/$1.dict
  [ ! -f "$dict" ] || echo "-dict=$dict"
  echo "-max_len=$(max_len "$1")"
}

max_len() {
  case $1 in
    moe-fuzz-ir) echo 32768 ;;
    moe-fuzz-layer-spec) echo 512 ;;
    *) echo 4096 ;;
  esac
}

do_build() {
  local cc=${CC:-clang-22} cxx=${CXX:-clang++-22}
  command -v "$cxx" > /dev/null || {
    echo "fuzz: $cxx not found (scripts/setup.sh installs clang-22 and libclang-rt-22-dev)" >&2
    exit 1
  }
  if [ ! -f "$build/build.ninja" ]; then
    # -O1 without -DNDEBUG: the project's asserts stay on, builds stay short.
    CC=$cc CXX=$cxx cmake -S "$root" -B "$build" -G Ninja \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE=-O1 \
      -DCMAKE_CXX_FLAGS_RELEASE=-O1 -DMOE_ENABLE_FUZZERS=ON > /dev/null
  fi
  ninja -C "$build" -j "$jobs" moe-fuzzers
}

# The "#N" executions libFuzzer reported last in a log.
execs_of() {
  grep -oE '^#[0-9]+' "$1" | tail -1 | tr -d '#'
}

# One target of `regress`: its report goes to $out/$t/report, its status is
# the exit status (the targets run side by side, FUZZ_PARALLEL at a time).
regress_one() { # TARGET SECONDS OUT
  local t=$1 seconds=$2 dir=$3/$1 f
  mkdir -p "$dir/corpus" "$dir/crashes"
  exec > "$dir/report" 2>&1
  # 1. Every corpus input once, no mutation: the regression tests.
  if ! (cd "$dir" && "$bin/$t" "${common[@]}" -runs=0 "$corpus_root/$t" \
        > "$dir/replay.log" 2>&1); then
    echo "fuzz: $t: an input of test/Fuzz/corpus/$t fails (log $dir/replay.log):"
    grep -E 'FINDING|ERROR|SUMMARY|Running: |runtime error' "$dir/replay.log" | tail -5
    return 1
  fi
  echo "$t: corpus of $(ls "$corpus_root/$t" | wc -l) inputs replayed"
  # 2. A short mutation run on a copy of the corpus.
  cp "$corpus_root/$t"/* "$dir/corpus/"
  if ! (cd "$dir" && "$bin/$t" "${common[@]}" -max_total_time="$seconds" \
        $(target_options "$t") -artifact_prefix="$dir/crashes/" \
        "$dir/corpus" > "$dir/fuzz.log" 2>&1); then
    echo "fuzz: $t: the mutation run found a crash (log $dir/fuzz.log):"
    grep -E 'FINDING|ERROR|SUMMARY|runtime error' "$dir/fuzz.log" | head -5
    for f in "$dir"/crashes/*; do
      echo "  reproduce: $bin/$t $f"
    done
    return 1
  fi
  echo "$t: ${seconds}s of mutation: $(execs_of "$dir/fuzz.log") inputs, no crash"
  # 3. The reproducers of open bugs: information, not a failure.
  for f in "$crash_root/$t"/*; do
    [ -f "$f" ] || continue
    if MOE_FUZZ_SKIP_KNOWN=0 "$bin/$t" "${common[@]}" "$f" > /dev/null 2>&1; then
      echo "$t: ${f#"$root"/} no longer crashes: fixed? move it into test/Fuzz/corpus/$t/"
    else
      echo "$t: ${f#"$root"/} still crashes (open)"
    fi
  done
}

do_regress() {
  local seconds=${FUZZ_SECONDS:-20} parallel=${FUZZ_PARALLEL:-$jobs} out t
  local failed=() pids=() i
  out=$(mktemp -d "${TMPDIR:-/tmp}/moe-fuzz-regress.XXXXXX")
  for i in "${!targets[@]}"; do
    # At most $parallel at once, started in order.
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do
      wait -n || true
    done
    regress_one "${targets[$i]}" "$seconds" "$out" &
    pids[$i]=$!
  done
  for i in "${!targets[@]}"; do
    t=${targets[$i]}
    wait "${pids[$i]}" || failed+=("$t")
    cat "$out/$t/report"
  done
  if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (logs and inputs in $out)" >&2
    exit 1
  fi
  rm -rf "$out"
  echo "fuzz: regress passed"
}

run_long() { # TARGET SECONDS OUT
  local t=$1 seconds=$2 dir=$3/$1 segment=0 status execs=0 n
  mkdir -p "$dir/corpus" "$dir/crashes"
  cp "$corpus_root/$t"/* "$dir/corpus/"
  local deadline=$((SECONDS + seconds))
  # libFuzzer stops at the first crash (saved under crashes/); start it
  # again on the grown corpus until the time is up. (Its fork mode keeps
  # going by itself, but restarts a job every few seconds, which costs the
  # slow MLIR targets most of their time.)
  while [ $((deadline - SECONDS)) -gt 5 ]; do
    segment=$((segment + 1))
    status=0
    (cd "$dir" && "$bin/$t" "${common[@]}" -max_total_time=$((deadline - SECONDS)) \
        $(target_options "$t") -artifact_prefix="$dir/crashes/" \
        "$dir/corpus" > "$dir/log.$segment" 2>&1) || status=$?
    n=$(execs_of "$dir/log.$segment")
    execs=$((execs + ${n:-0}))
    [ "$status" -eq 0 ] && break
  done
  # New coverage goes into the tree's corpus (files named by their SHA-1).
  "$bin/$t" -merge=1 $(target_options "$t") "$corpus_root/$t" \
    "$dir/corpus" > "$dir/merge.log" 2>&1 || true
  local crashes added
  # (slow-unit-* files are inputs that took long but finished: not findings)
  crashes=$(find "$dir/crashes" -type f \( -name 'crash-*' -o -name 'timeout-*' \
    -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  added=$(grep -oE 'MERGE-OUTER: [0-9]+ new files' "$dir/merge.log" | grep -oE '[0-9]+' || echo 0)
  echo "$t: ${seconds}s, $execs inputs in $segment runs, $crashes crash/timeout/oom inputs in $dir/crashes, $added new corpus files"
}

do_long() {
  local seconds=${1:-}
  [[ $seconds =~ ^[0-9]+$ ]] || usage
  shift
  local chosen=("$@")
  [ ${#chosen[@]} -ne 0 ] || chosen=("${targets[@]}")
  local out=${FUZZ_OUT:-$build/long-$(date -u +%Y%m%d-%H%M%S)}
  local parallel=${FUZZ_PARALLEL:-1} running=0 t
  mkdir -p "$out"
  for t in "${chosen[@]}"; do
    [ -x "$bin/$t" ] || { echo "fuzz: unknown target $t (${targets[*]})" >&2; exit 2; }
  done
  for t in "${chosen[@]}"; do
    run_long "$t" "$seconds" "$out" | tee -a "$out/summary.txt" &
    running=$((running + 1))
    if [ "$running" -ge "$parallel" ]; then
      wait -n || true
      running=$((running - 1))
    fi
  done
  wait
  echo "fuzz: logs, crashes and working corpora in $out (summary.txt)"
  du -sh "$corpus_root"
}

do_prune() {
  local chosen=("$@") t kept
  [ ${#chosen[@]} -ne 0 ] || chosen=("${targets[@]}")
  for t in "${chosen[@]}"; do
    kept=$(mktemp -d "${TMPDIR:-/tmp}/moe-fuzz-prune.XXXXXX")
    cp "$corpus_root/$t"/seed-* "$kept/"
    cp "$corpus_root/$t"/found-* "$kept/" 2> /dev/null || true
    # Of the rest, only small inputs (FUZZ_PRUNE_MAX_BYTES, default 2048)
    # that add coverage: the corpus stays small in the tree and quick to replay.
    mkdir "$kept.small"
    find "$corpus_root/$t" -type f ! -name 'seed-*' ! -name 'found-*' \
      -size -"$((${FUZZ_PRUNE_MAX_BYTES:-2048} + 1))"c -exec cp {} "$kept.small/" \;
    "$bin/$t" -merge=1 $(target_options "$t") "$kept" "$kept.small" \
      > "$kept.log" 2>&1 || { cat "$kept.log" >&2; exit 1; }
    rm -rf "$kept.small"
    find "$corpus_root/$t" -type f ! -name 'seed-*' ! -name 'found-*' -delete
    find "$kept" -type f ! -name 'seed-*' ! -name 'found-*' -exec cp {} "$corpus_root/$t/" \;
    rm -rf "$kept" "$kept.log"
    echo "$t: $(ls "$corpus_root/$t" | wc -l) inputs, $(cat "$corpus_root/$t"/* | wc -c) bytes"
  done
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
case $cmd in
  build) do_build ;;
  regress) do_build; do_regress ;;
  long) do_build; do_long "$@" ;;
  prune) do_build; do_prune "$@" ;;
  *) usage ;;
esac
