"""SonicMoE's forward alone, timed as bench/torch_baselines.py times the peers (torch_baselines.bench:
median of 10 after 3 warm-ups, CUDA events). ../shared/bench/sonic_bench.py times the forward and the
training step; the training step's JIT compilation would not fit one device call beside MoE-MLIR's
runs, which the comparison needs in the same call (bench/sonic_device.sh).
usage: sonic_forward.py [config ...]   (beside torch_baselines.py, with SonicMoE on PYTHONPATH)
SONIC_ROUNDS=N times each config N times (its kernels compiled once, in the first); with
OURS_COMMAND (a shell command where {config} stands for the config's name) MoE-MLIR's run
follows each of SonicMoE's, so the two alternate on the same GPU. SONIC_ITERS (default 10) sets
the timed forwards of each run: a few hundred hold the GPU at its power cap (sustained throughput)
where ten measure a burst. Each line carries its run's start and end (time.time()), so that a clock
sampler beside it (bench/clock_phases.py) can say what clocks each run had."""
import json, os, subprocess, sys, time
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_baselines as tb
from sonicmoe import moe_TC_softmax_topk_layer


def run(name):
    T, H, Fd, E, k = tb.CONFIGS[name]
    g = torch.Generator(device="cuda").manual_seed(0)
    bf = torch.bfloat16
    x = torch.randn(T, H, device="cuda", dtype=bf, generator=g)
    # SonicMoE's layouts: router [E, H], w1 [E, 2F, H] (gate and up rows interleaved), w2 [E, H, F].
    router = torch.randn(E, H, device="cuda", dtype=bf, generator=g) * H ** -0.5
    w1 = torch.randn(E, 2 * Fd, H, device="cuda", dtype=bf, generator=g) * H ** -0.5
    w2 = torch.randn(E, H, Fd, device="cuda", dtype=bf, generator=g) * Fd ** -0.5
    stream = torch.cuda.current_stream().cuda_stream

    def forward(x, router, w1, w2, k):
        out, _, _ = moe_TC_softmax_topk_layer(x, router, w1.permute(1, 2, 0), None, w2.permute(1, 2, 0),
                                              None, k, stream, "swiglu", True)
        return out

    with torch.no_grad():
        forward(x, router, w1, w2, k)  # the JIT compilation, outside the timed span
        torch.cuda.synchronize()
        start = time.time()
        ms, peak = tb.bench(forward, (x, router, w1, w2, k), backward=False,
                            iters=int(os.environ.get("SONIC_ITERS", "10")))
        end = time.time()
    flops = 2 * T * k * H * 3 * Fd
    print(json.dumps(dict(cfg=name, impl="sonic", bwd=False, ms=round(ms, 3),
                          tflops=round(flops / ms / 1e9, 1), peak_gib=round(peak / 2**30, 2),
                          start=round(start, 3), end=round(end, 3))), flush=True)


ours = os.environ.get("OURS_COMMAND")
for name in sys.argv[1:] or ["qwen3_30b_a3b", "olmoe", "mixtral"]:
    for _ in range(int(os.environ.get("SONIC_ROUNDS", "1"))):
        try:
            run(name)
        except Exception as ex:  # one preset's failure must not hide the others'
            print(json.dumps(dict(cfg=name, impl="sonic", error=str(ex)[:300])), flush=True)
            break
        torch.cuda.empty_cache()
        if ours:
            start = time.time()
            result = subprocess.run(ours.format(config=name), shell=True, capture_output=True, text=True)
            end = time.time()
            lines = [l for l in (result.stdout + result.stderr).splitlines() if l.startswith(("time", "error"))]
            print(f"moe-mlir {name}: " + " ".join(lines) + f" [{start:.3f} {end:.3f}]", flush=True)
