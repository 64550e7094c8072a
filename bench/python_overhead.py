#!/usr/bin/env python3
"""What the Python path costs: the PyTorch-facing layer (moe_mlir.torch)
against the same artifacts called from moe-run, forward and forward +
backward, on the GPU (issue #13's benchmark; goal: under 3%).

    python_overhead.py --precompile DIR            # here, with the compiler
    python_overhead.py --artifacts DIR --moe-run PATH [--repeat N]   # GPU

Both sides time each run with a pair of CUDA events around it and take
the median ("alone"), so host work that keeps the GPU waiting (argument
checks, allocation, the dispatcher, autograd) is counted. The layer is
also timed back to back (calls queued between one pair of events, as in a
training loop, where that host work overlaps the GPU's). The PyTorch forward +
backward is the forward artifact then the training artifact (which runs
the forward again, so its y and routing are its own); moe-run's figure is
the sum of the two artifacts' medians. moe-run reads the layer's own
operands (--inputs), so both sides route the same tokens.
"""

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

import torch

# The presets (README, "Layer specs") in MoELayer's terms; --precompile
# checks them against the compiler's own.
PRESETS = {
    "qwen3_30b_a3b": (16384, dict(hidden=2048, ffn=768, experts=128,
                                  top_k=8)),
    "olmoe": (16384, dict(hidden=2048, ffn=1024, experts=64, top_k=8)),
    "mixtral": (8192, dict(hidden=4096, ffn=14336, experts=8, top_k=2)),
}
TARGET = "cuda:sm_90a"


def layer_of(name):
    from moe_mlir.torch import MoELayer
    tokens, options = PRESETS[name]
    return MoELayer(**options, dtype=torch.bfloat16), tokens


def precompile(directory):
    import moe_mlir
    from moe_mlir.torch import precompile as compile_layer
    for name in PRESETS:
        layer, tokens = layer_of(name)
        spec = moe_mlir.LayerSpec.parse(name)
        assert spec.replace(tokens=1) == layer.spec, (spec, layer.spec)
        assert spec.tokens == tokens
        compile_layer(layer, [tokens], TARGET, directory)
        print(f"compiled {name} forward and training for {TARGET}", flush=True)


def median_ms(step, repeat, warmup=3, before=None):
    times = []
    for i in range(warmup + repeat):
        if before:
            before()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        if i >= warmup:
            times.append(start.elapsed_time(end))
    return statistics.median(times)


def back_to_back_ms(step, calls=20, before=None):
    """Milliseconds per call of `calls` calls queued back to back between
    one pair of events: a training loop's steady state, where the host's
    work for a call overlaps the GPU's for the one before."""
    for _ in range(3):
        if before:
            before()
        step()
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        if before:
            before()
        step()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / calls


def save_inputs(directory, tensors):
    """argI.npy for moe-run --inputs: the layer's very operands (bf16 is
    exact in float32), so that both sides route the same tokens and run
    the same GEMM shapes."""
    for index, t in enumerate(tensors):
        np.save(f"{directory}/arg{index}.npy",
                t.detach().float().cpu().numpy())


def moe_run_ms(moe_run, path, repeat, backward, inputs):
    command = [moe_run, path, "--repeat", str(repeat), "--inputs",
               inputs] + (["--backward"] if backward else [])
    done = subprocess.run(command, capture_output=True, text=True)
    match = re.search(r"^time: median ([0-9.]+) ms", done.stdout, re.M)
    if done.returncode != 0 or not match:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return float(match.group(1))


def measure(name, args):
    from moe_mlir.torch import _function, artifact_name
    torch.manual_seed(1)
    layer, tokens = layer_of(name)
    layer = layer.cuda()
    x = torch.randn(tokens, layer.spec.hidden, device="cuda",
                    dtype=torch.bfloat16)
    dy = torch.randn_like(x)
    x_grad = x.clone().requires_grad_()

    forward = median_ms(lambda: layer(x), args.repeat)
    forward_steady = back_to_back_ms(lambda: layer(x), args.repeat)

    def step():
        layer(x_grad).backward(dy)

    def clear():
        layer.zero_grad(set_to_none=True)
        x_grad.grad = None

    peak = torch.cuda.max_memory_allocated() / 2**30
    training_repeat = args.training_repeat or args.repeat
    training = median_ms(step, training_repeat, warmup=1, before=clear) \
        if training_repeat > 0 else float("nan")
    training_steady = back_to_back_ms(step, training_repeat, before=clear) \
        if training_repeat > 0 else float("nan")

    paths = [f"{args.artifacts}/" +
             artifact_name(layer._spec_text, tokens, kind, TARGET)
             for kind in (False, True)]
    # The layer did load these very files.
    assert _function(layer._spec_text, tokens, False, TARGET)
    operands = [x, layer.w_gate, layer.w1, layer.w2]
    inputs = tempfile.mkdtemp(prefix=f"moe-inputs-{name}-")
    save_inputs(inputs, operands)
    run_forward = moe_run_ms(args.moe_run, paths[0], args.repeat, False,
                             inputs)
    np.save(f"{inputs}/arg4.npy", dy.float().cpu().numpy())  # after w2
    run_training = moe_run_ms(args.moe_run, paths[1], training_repeat, True,
                              inputs) \
        if training_repeat > 0 else float("nan")
    shutil.rmtree(inputs)
    run_both = run_forward + run_training

    def overhead(ms, reference):
        return f"{100 * (ms / reference - 1):+.1f}%"
    print(f"| {name} | {run_forward:.3f} | {forward:.3f} "
          f"({overhead(forward, run_forward)}) | {forward_steady:.3f} "
          f"({overhead(forward_steady, run_forward)}) | "
          f"{run_both:.3f} ({run_forward:.3f} + {run_training:.3f}) | "
          f"{training:.3f} ({overhead(training, run_both)}) | "
          f"{training_steady:.3f} ({overhead(training_steady, run_both)}) | "
          f"{peak:.2f} |", flush=True)
    torch.cuda.reset_peak_memory_stats()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precompile", metavar="DIR")
    parser.add_argument("--artifacts", metavar="DIR")
    parser.add_argument("--moe-run", metavar="PATH")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--training-repeat", type=int, default=0,
                        help="runs of the training step (default --repeat; "
                        "0 = --repeat, -1 = forward only)")
    parser.add_argument("--presets", default=",".join(PRESETS))
    args = parser.parse_args()
    if args.precompile:
        return precompile(args.precompile)
    if not (args.artifacts and args.moe_run):
        parser.error("--artifacts and --moe-run (or --precompile)")
    print(f"device: {torch.cuda.get_device_name()}; median of "
          f"{args.repeat} runs, ms")
    print("| preset | moe-run fwd | layer fwd, alone | layer fwd, back to "
          "back | moe-run fwd + train | layer fwd+bwd, alone | layer "
          "fwd+bwd, back to back | torch peak GiB (forward) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.presets.split(","):
        measure(name, args)


if __name__ == "__main__":
    main()
