#!/usr/bin/env bash
# Expert parallelism on a machine of R GPUs (issue #16; no MLIR there): the
# per-rank CUDA artifacts of ep=R, one process a GPU launched the torchrun
# way (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT: the machine
# has no mpirun), checked against the single-rank reference on the global
# batch, then timed with and without overlap beside PyTorch + NCCL
# (../shared/bench/torch_ep_baseline.py) in the same call.
#
#   here:          bench/ep_multigpu_device.sh compile [DEST]   (R=2 default;
#                  artifacts and sources into DEST, default .device/ep2), then
#                  optionally `compile-configs [DEST]` (the CPU suite's
#                  multi-rank configurations, run with CONFIGS_ONLY=1)
#   GPU machine:   bash DEST/bench/ep_multigpu_device.sh run
#
# "run" writes $OUT/ep_multigpu.log, the trace of one overlapped run
# ($OUT/ep_multigpu_trace.json) and PyTorch's numbers ($OUT/torch_ep.json).
# DEADLINE (seconds, default 540) stops starting new runs after it; QUICK=1
# runs only the presets' checks, forward timings and the traced overlap run,
# and with CONFIGS=1 the configurations of `compile-configs` too. The
# all-to-alls keep their split sizes on the device unless MOERT_ALL_TO_ALL=
# host; QUICK also times qwen3_30b_a3b that way, for the difference. With
# googletest sources in DEST/googletest (compile copies .device/googletest)
# the runtime's NCCL unit tests run first, on one GPU. FAULTS=1 runs only
# the fault cases: a rank killed mid-run, a rank failing on bad input.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ranks=${R:-2}

if [ "${1:-}" = compile-configs ]; then
  # The configurations of test/Integration/MPI/ at R ranks, beside `compile`'s.
  bin=${BUILD_DIR:-$here/build}/bin
  dest=${2:-$here/.device/ep$ranks}
  ep=ep=$ranks
  for item in "capacity:tiny,capacity=0.5,$ep" "bf16:tiny,dtype=bf16,hidden=64,ffn=32,$ep" \
      "dynamic:tiny,dynamic=1,$ep" "aux:tiny,aux_loss=0.01,$ep" \
      "sigmoid-capacity:tiny,capacity=0.5,router=sigmoid,bias=1,$ep" \
      "k-equals-e-gelu:tiny,top_k=4,activation=gelu_glu,$ep" "overlap3:tiny,overlap=4,$ep" \
      "bf16-overlap:tiny,dtype=bf16,overlap=2,$ep" \
      "one-token:tokens=1,hidden=8,ffn=4,experts=8,top_k=1,$ep" \
      "group-limited:tokens=24,hidden=32,ffn=16,experts=8,top_k=3,n_group=4,topk_group=2,$ep" \
      "capacity-aux-train:tiny,aux_loss=0.1,capacity=0.75,$ep:--backward"; do
    IFS=: read -r name spec flags <<< "$item"
    "$bin/moe-compile" --layer "$spec" --target=cuda:sm_90a $flags \
      -o "$dest/art/cfg-$name${flags:+-train}.so" 2>/dev/null ||
      { echo "compile of $name FAILED"; exit 1; }
    echo "compiled cfg-$name${flags:+-train}: $spec $flags"
  done
  exit 0
fi
if [ "${1:-}" = compile ]; then
  root=$here
  bin=${BUILD_DIR:-$root/build}/bin
  dest=${2:-$root/.device/ep$ranks}
  rm -rf "$dest" && mkdir -p "$dest/art" "$dest/lib/Target" "$dest/peer" "$dest/bench" "$dest/tools"
  cp -r "$root/runtime" "$root/include" "$dest/"
  [ -d "$root/.device/googletest" ] && cp -r "$root/.device/googletest" "$dest/"
  cp "$root/bench/ep_multigpu_device.sh" "$dest/bench/"
  cp -r "$root/lib/Layer" "$root/lib/Reference" "$dest/lib/"
  cp "$root/lib/Target/CudaChip.h" "$root/lib/Target/CudaChip.cpp" "$dest/lib/Target/"
  cp -r "$root/tools/moe-run" "$dest/tools/"
  # The peer: PyTorch + NCCL all_to_all_single, the team's script (not ours).
  cp "$root/../shared/bench/torch_ep_baseline.py" "$dest/peer/"
  echo "$ranks" > "$dest/ranks"
  t=cuda:sm_90a
  compile() { # name, spec, flags...
    local name=$1 spec=$2; shift 2
    "$bin/moe-compile" --layer "$spec" --target=$t "$@" -o "$dest/art/$name.so" ||
      { echo "compile of $name FAILED"; exit 1; }
    echo "compiled $name: $spec $*"
  }
  ep=ep=$ranks
  small=tokens=256,hidden=256,ffn=128,experts=16,top_k=4,dtype=bf16
  # Checked against the reference (sizes its CPU reference finishes in seconds,
  # the presets at their full H, F, E, k with few tokens).
  compile tiny "tiny,$ep"
  compile tiny-train "tiny,$ep" --backward
  compile tiny-overlap "tiny,$ep,overlap=2"
  compile capacity "tokens=64,hidden=64,ffn=32,experts=8,top_k=2,capacity=1.0,$ep"
  compile sigmoid "tokens=64,hidden=64,ffn=32,experts=8,top_k=2,router=sigmoid,bias=1,$ep"
  compile small "$small,$ep"
  compile small-overlap "$small,$ep,overlap=2"
  compile small-train "$small,aux_loss=0.01,$ep" --backward
  compile check-qwen3_30b_a3b "qwen3_30b_a3b,tokens=64,$ep"
  compile check-olmoe "olmoe,tokens=64,$ep"
  compile check-mixtral "mixtral,tokens=16,$ep"
  compile check-qwen3_30b_a3b-train "qwen3_30b_a3b,tokens=64,$ep" --backward
  # One rank, one GPU: the same NCCL path with a world of one.
  compile one-rank "tiny,ep=1"
  compile one-rank-overlap "$small,ep=1,overlap=2"
  compile one-rank-train "tiny,ep=1,aux_loss=0.01" --backward
  # Timed: the presets' full T per rank (the global batch is R·T), as
  # torch_ep_baseline.py runs them; without ep on one GPU for the ratio.
  for p in qwen3_30b_a3b mixtral; do
    compile "$p" "$p,$ep"
    compile "$p-overlap" "$p,$ep,overlap=0"
    compile "$p-train" "$p,$ep" --backward
    compile "$p-one-gpu" "$p"
  done
  # The chunk count of the 21:19 run, beside the cost model's choice.
  compile qwen3_30b_a3b-overlap4 "qwen3_30b_a3b,$ep,overlap=4"
  du -sh "$dest"
  exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 compile [DEST] | run" >&2; exit 2; }

dir=$here
[ -f "$dir/ranks" ] && ranks=$(cat "$dir/ranks")
out=${OUT:-$PWD/device-out}
mkdir -p "$out"
exec > >(tee "$out/ep_multigpu.log") 2>&1
start=$(date +%s)
deadline=${DEADLINE:-540}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
echo "== $(date -u +%Y-%m-%dT%H:%MZ), $ranks ranks"
nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader
nvidia-smi topo -m 2>&1 | head -8
for d in /usr/local/cuda/lib64 $(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null); do
  [ -e "$d/libnccl.so.2" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-} && echo "== libnccl.so.2 from $d" && break
done
export MOERT_NCCL_TIMEOUT_S=${MOERT_NCCL_TIMEOUT_S:-60}

cmake -S "$dir/tools/moe-run" -B /tmp/moe-run-build -G Ninja -DCMAKE_BUILD_TYPE=Release > /tmp/cmake.log ||
  { cat /tmp/cmake.log; exit 1; }
ninja -C /tmp/moe-run-build -j "$(nproc)" > /tmp/ninja.log || { cat /tmp/ninja.log; exit 1; }
run=/tmp/moe-run-build/moe-run
echo "== moe-run built ($(( $(date +%s) - start )) s)"

failures=0
if [ -d "$dir/googletest" ] && [ "${FAULTS:-0}" != 1 ]; then
  echo "== the runtime's NCCL unit tests, one GPU ($(( $(date +%s) - start )) s)"
  gt=/tmp/googletest-install
  { cmake -S "$dir/googletest" -B /tmp/googletest-build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX=$gt -DBUILD_GMOCK=OFF && ninja -C /tmp/googletest-build install &&
    cmake -S "$dir/runtime" -B /tmp/moert-tests -G Ninja -DCMAKE_PREFIX_PATH=$gt &&
    ninja -C /tmp/moert-tests; } > /tmp/runtime-tests.log 2>&1 ||
    { echo "   runtime tests: build FAILED"; tail -20 /tmp/runtime-tests.log; failures=$((failures + 1)); }
  (cd /tmp/moert-tests && CUDA_VISIBLE_DEVICES=0 ctest --output-on-failure -R 'Nccl|CudaArtifact' 2>&1 | tail -8)
fi
port=29600
# Starts one moe-run a GPU in the background; LOGS gets the log prefix.
start_ranks() { # log-prefix, time limit, artifact, flags...
  local prefix=$1 limit=$2 a=$dir/art/$3.so; shift 3
  port=$((port + 1))
  for ((r = 0; r < ranks; r++)); do
    env RANK=$r WORLD_SIZE=$ranks LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      timeout "$limit" "$run" "$a" --backend=cuda:sm_90a "$@" > "$prefix.rank$r" 2>&1 &
    echo $! > "$prefix.pid$r"
  done
}
# Waits for the ranks started under PREFIX and prints what they said.
finish_ranks() { # title, log-prefix
  local title=$1 prefix=$2 rc bad=0
  echo "-- $title"
  for ((r = 0; r < ranks; r++)); do
    wait "$(cat "$prefix.pid$r")"; rc=$?
    [ $r = 0 ] && grep -E "expert parallelism|routing:|communication|relative error|differ|passed|failed|CHECK|median|memory|trace:|step" "$prefix.rank0" | sed 's/^/   /'
    grep -E "error|rank $r:" "$prefix.rank$r" | grep -v "relative error" | head -4 | sed "s/^/   rank $r: /"
    [ $rc = 0 ] || { echo "   rank $r FAILED (exit $rc)"; bad=1; }
  done
  [ $bad = 0 ] || failures=$((failures + 1))
}
launch() { # title, time limit, artifact, flags...
  local title=$1; shift
  if (( $(date +%s) - start > deadline )); then echo "-- $title: not run (DEADLINE)"; return; fi
  start_ranks /tmp/launch "$@"
  finish_ranks "$title" /tmp/launch
}

if [ "${FAULTS:-0}" = 1 ]; then
  # FAULTS=1: a rank that dies or fails must end the other with an error
  # naming the failed rank within a bounded time, never a hang: the drain at
  # the end of each call polls the events, NCCL's asynchronous error and the
  # peers' processes; the time limit (MOERT_NCCL_TIMEOUT_S) and the exit
  # after an abort (MOERT_NCCL_EXIT_S) bound what these miss.
  export MOERT_NCCL_TIMEOUT_S=15 MOERT_NCCL_EXIT_S=10
  expect_rank0_fails() { # t0, what rank 0's error must say
    local t0=$1 named=$2 rc took
    wait "$(cat /tmp/fault.pid0)"; rc=$?
    took=$(( $(date +%s) - t0 ))
    cp /tmp/fault.rank0 "$out/fault-$failures-$took.rank0.log"
    grep -m2 -E "error|moert:" /tmp/fault.rank0 | sed 's/^/   rank 0: /'
    if [ $rc = 0 ] || [ $rc = 124 ] || [ $took -gt 45 ] || ! grep -q "$named" /tmp/fault.rank0; then
      echo "   UNEXPECTED (rank 0 exit $rc after ${took}s)"; failures=$((failures + 1))
    else
      echo "   ok: rank 0 exit $rc after ${took}s"
    fi
  }
  echo "-- rank 1 killed (SIGKILL) while both time qwen3_30b_a3b ep=2"
  start_ranks /tmp/fault 90 qwen3_30b_a3b --repeat 3000
  # The pid is timeout's: its child is the rank.
  t0=$(date +%s); sleep 8; pkill -9 -P "$(cat /tmp/fault.pid1)"
  # When rank 0 reports (its exit can come later: the abort and the exit
  # are bounded separately).
  ( for _ in $(seq 1 900); do grep -q "error\|moert:" /tmp/fault.rank0 && break; sleep 0.1; done
    echo "   rank 0 reported $(( $(date +%s) - t0 - 8 ))s after the kill" ) &
  watcher=$!
  # If this rank 0 is still there 25 s after the kill: where its threads wait.
  launcher0=$(cat /tmp/fault.pid0)
  ( sleep 25; rank0=$(pgrep -P "$launcher0" | head -1)
    [ -n "$rank0" ] || exit 0
    echo "   rank 0 (pid $rank0) still running 25 s after the kill; its threads:"
    for task in /proc/$rank0/task/*; do
      echo "     $(cat $task/comm 2>/dev/null) $(cat $task/wchan 2>/dev/null) $(cut -d' ' -f3 $task/stat 2>/dev/null)"
    done
    command -v gdb > /dev/null &&
      timeout 60 gdb -p "$rank0" -batch -ex "thread apply all bt 12" 2>&1 | grep -E "^#|^Thread" | head -80 > "$out/fault-rank0-stacks.txt" ) &
  dumper=$!
  grep -E "error" /tmp/fault.rank1 | head -1
  expect_rank0_fails "$((t0 + 8))" "rank 1 (process"
  kill "$watcher" "$dumper" 2> /dev/null
  echo "-- rank 1 fails on bad input before its first collective"
  port=$((port + 1))
  env RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    timeout 90 "$run" "$dir/art/tiny.so" --backend=cuda:sm_90a --check > /tmp/fault.rank0 2>&1 &
  echo $! > /tmp/fault.pid0
  env RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    timeout 90 "$run" "$dir/art/tiny.so" --backend=cuda:sm_90a --inputs /nonexistent \
    > /tmp/fault.rank1 2>&1
  echo "   rank 1: exit $? $(grep -m1 error /tmp/fault.rank1)"
  expect_rank0_fails "$(date +%s)" "rank 0 of 2"
  echo "== $failures failures ($(( $(date +%s) - start )) s)"
  [ "$failures" = 0 ]
  exit
fi

# The CPU suite's multi-rank configurations (art/cfg-*.so of
# `compile-configs`), each checked once.
check_configs() {
  local a name flags
  for a in "$dir"/art/cfg-*.so; do
    name=$(basename "$a" .so)
    flags=(--check --seed 1)
    case "$name" in *-train) flags+=(--backward) ;; esac
    launch "$name" 60 "$name" "${flags[@]}"
  done
}

echo "== correctness: every rank against the single-rank reference on the global batch"
# The presets' CPU references take longest: they run beside the small checks.
start_ranks /tmp/qwen3 300 check-qwen3_30b_a3b --check --seed 1
start_ranks /tmp/mixtral 400 check-mixtral --check --seed 1
if [ "${CONFIGS_ONLY:-0}" = 1 ]; then
  # CONFIGS_ONLY=1: the CPU suite's multi-rank configurations, nothing else.
  check_configs
  echo "== $failures failures ($(( $(date +%s) - start )) s)"
  [ "$failures" = 0 ]
  exit
fi
if [ "${QUICK:-0}" = 1 ]; then
  # QUICK=1: the presets' checks and the forward timings only (a short call).
  for a in one-rank one-rank-overlap one-rank-train; do
    flags=(--check --seed 1); [ $a = one-rank-train ] && flags+=(--backward)
    echo "-- $a (one GPU, a world of one)"
    timeout 60 "$run" "$dir/art/$a.so" --backend=cuda:sm_90a "${flags[@]}" 2>&1 |
      grep -E "relative error|differ|CHECK|rror" | sed 's/^/   /'
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "   FAILED"; failures=$((failures + 1)); }
  done
  launch "bf16 256 tokens, seed 1" 60 small --check --seed 1
  finish_ranks "qwen3_30b_a3b, 64 tokens a rank" /tmp/qwen3
  finish_ranks "mixtral, 16 tokens a rank" /tmp/mixtral
  echo "== time per rank (rank 0's median of 20) ($(( $(date +%s) - start )) s)"
  for p in mixtral qwen3_30b_a3b; do
    echo "-- $p on one GPU, no ep"
    timeout 120 "$run" "$dir/art/$p-one-gpu.so" --repeat 20 2>&1 | grep -E "median|error" | sed 's/^/   /'
    launch "$p ep=$ranks" 150 "$p" --repeat 20
    launch "$p ep=$ranks, overlap (cost model's chunks)" 150 "$p-overlap" --repeat 20
  done
  launch "qwen3_30b_a3b ep=$ranks, overlap=4" 150 qwen3_30b_a3b-overlap4 --repeat 20
  launch "qwen3_30b_a3b ep=$ranks overlap, traced" 150 qwen3_30b_a3b-overlap --repeat 3 \
    --trace="$out/ep_multigpu_trace.json"
  # SWEEP_BLOCKS="32 128": the copy kernels' grid (MOERT_ALL_TO_ALL_BLOCKS).
  for b in ${SWEEP_BLOCKS:-}; do
    export MOERT_ALL_TO_ALL_BLOCKS=$b
    launch "qwen3_30b_a3b ep=$ranks, copies on $b blocks" 150 qwen3_30b_a3b --repeat 20
    launch "qwen3_30b_a3b ep=$ranks, overlap, copies on $b blocks" 150 qwen3_30b_a3b-overlap --repeat 20
    unset MOERT_ALL_TO_ALL_BLOCKS
  done
  # The same programs with the split sizes read on the host (NCCL moves
  # the rows): what keeping them on the device changed.
  export MOERT_ALL_TO_ALL=host
  launch "qwen3_30b_a3b ep=$ranks, split sizes on the host" 150 qwen3_30b_a3b --repeat 20
  launch "qwen3_30b_a3b ep=$ranks, overlap, split sizes on the host" 150 qwen3_30b_a3b-overlap --repeat 20
  unset MOERT_ALL_TO_ALL
  [ "${CONFIGS:-0}" = 1 ] && check_configs
  echo "== PyTorch + NCCL all_to_all_single, same call ($(( $(date +%s) - start )) s)"
  OUT=$out timeout 150 python3 "$dir/peer/torch_ep_baseline.py" qwen3_30b_a3b mixtral 2>&1 |
    grep -v Warning | tail -4
  echo "== $failures failures ($(( $(date +%s) - start )) s)"
  [ "$failures" = 0 ]
  exit
fi
start_ranks /tmp/olmoe 300 check-olmoe --check --seed 1
for s in 1 2; do
  launch "tiny forward, seed $s" 60 tiny --check --seed $s
  launch "tiny training step, seed $s" 60 tiny-train --backward --check --seed $s
  launch "tiny overlap=2, seed $s" 60 tiny-overlap --check --seed $s
  launch "capacity 1.0, seed $s" 60 capacity --check --seed $s
  launch "sigmoid router with bias, seed $s" 60 sigmoid --check --seed $s
  launch "bf16 256 tokens, seed $s" 60 small --check --seed $s
  launch "bf16 256 tokens overlap=2, seed $s" 60 small-overlap --check --seed $s
  launch "bf16 256 tokens training step with aux loss, seed $s" 90 small-train --backward --check --seed $s
done
finish_ranks "qwen3_30b_a3b, 64 tokens a rank" /tmp/qwen3
finish_ranks "olmoe, 64 tokens a rank" /tmp/olmoe
start_ranks /tmp/qwen3-train 300 check-qwen3_30b_a3b-train --backward --check --seed 1
finish_ranks "mixtral, 16 tokens a rank" /tmp/mixtral
finish_ranks "qwen3_30b_a3b training step, 64 tokens a rank" /tmp/qwen3-train

echo "== time per rank (rank 0's median of 20; CUDA events around each call) ($(( $(date +%s) - start )) s)"
for p in qwen3_30b_a3b mixtral; do
  if (( $(date +%s) - start <= deadline )); then
    echo "-- $p on one GPU, no ep"
    timeout 120 "$run" "$dir/art/$p-one-gpu.so" --repeat 20 2>&1 | grep -E "median|error" | sed 's/^/   /'
  fi
  launch "$p ep=$ranks" 150 "$p" --repeat 20
  launch "$p ep=$ranks, overlap (cost model's chunks)" 150 "$p-overlap" --repeat 20
  launch "$p ep=$ranks training step" 200 "$p-train" --backward --repeat 10
done
launch "qwen3_30b_a3b ep=$ranks overlap, traced" 150 qwen3_30b_a3b-overlap --repeat 3 \
  --trace="$out/ep_multigpu_trace.json"

echo "== PyTorch + NCCL all_to_all_single, same call ($(( $(date +%s) - start )) s)"
if (( $(date +%s) - start <= deadline + 30 )); then
  OUT=$out timeout 240 python3 "$dir/peer/torch_ep_baseline.py" qwen3_30b_a3b mixtral 2>&1 |
    grep -v Warning | tail -6
fi
echo "== $failures failures ($(( $(date +%s) - start )) s)"
[ "$failures" = 0 ]
