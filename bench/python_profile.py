#!/usr/bin/env python3
"""Where the Python path's time goes (issue #13): one preset's layer on the
GPU, against the same artifact called through moert with no PyTorch op
around it.

    python_profile.py --artifacts DIR --out DIR [--preset NAME]

Prints, for the forward and for forward + backward:
  - host time per call: the calls issued while the GPU is kept busy (a
    sleep kernel queued first), so that no call waits for the device;
  - GPU time per call timed alone (a pair of events around one call, then
    a wait: what bench/python_overhead.py and moe-run measure) and back to
    back (20 calls between one pair of events: the steady state of a
    training loop, where host work overlaps the GPU);
  - the top of a cProfile of the host side, and torch.profiler's tables;
    the profiler's Chrome trace of three calls goes to --out.
"""

import argparse
import cProfile
import io
import os
import pstats
import time

import torch

from python_overhead import (TARGET, PRESETS, back_to_back_ms, layer_of,
                             median_ms)


def keep_gpu_busy(milliseconds):
    # About 1.4 GHz; only needs to outlast the host work that follows.
    torch.cuda._sleep(int(milliseconds * 1.4e6))


def host_ms(step, calls=20):
    torch.cuda.synchronize()
    keep_gpu_busy(50 * calls)
    start = time.perf_counter()
    for _ in range(calls):
        step()
    elapsed = (time.perf_counter() - start) * 1e3 / calls
    torch.cuda.synchronize()
    return elapsed


def host_profile(step, calls=20, top=22):
    torch.cuda.synchronize()
    keep_gpu_busy(80 * calls)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        step()
    profiler.disable()
    torch.cuda.synchronize()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def report(title, step, before=None):
    print(f"\n== {title}", flush=True)
    # Host time last: a first call's one-off work (loading, the
    # dispatcher's caches) would count in it otherwise.
    alone = median_ms(step, 20, before=before)
    steady = back_to_back_ms(step, before=before)
    host = host_ms(step) if before is None else float("nan")
    print(f"host {host:.3f} ms/call | alone {alone:.3f} ms | "
          f"back to back {steady:.3f} ms/call", flush=True)
    return alone, steady


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--preset", default="qwen3_30b_a3b",
                        choices=list(PRESETS))
    args = parser.parse_args()
    os.environ["MOE_MLIR_ARTIFACT_DIR"] = args.artifacts
    from moe_mlir.torch import _call_cuda, _function

    torch.manual_seed(1)
    layer, tokens = layer_of(args.preset)
    layer = layer.cuda()
    x = torch.randn(tokens, layer.spec.hidden, device="cuda",
                    dtype=torch.bfloat16)
    dy = torch.randn_like(x)
    x_grad = x.clone().requires_grad_()
    operands = [x, layer.w_gate.detach(), layer.w1.detach(),
                layer.w2.detach()]
    forward_fn = _function(layer._spec_text, tokens, False, TARGET)
    training_fn = _function(layer._spec_text, tokens, True, TARGET)
    print(f"device: {torch.cuda.get_device_name()}; preset {args.preset}, "
          f"T={tokens}; torch {torch.__version__}")

    raw_forward = lambda: _call_cuda(forward_fn, operands, x)
    raw_training = lambda: _call_cuda(training_fn, operands + [dy], x)
    layer_forward = lambda: layer(x)

    def step():
        layer(x_grad).backward(dy)

    def clear():
        layer.zero_grad(set_to_none=True)
        x_grad.grad = None

    report("forward: the artifact through moert (no torch op)", raw_forward)
    report("forward: the layer (torch.ops.moe_mlir.moe_layer)", layer_forward)
    os.environ["MOERT_WAIT_FOR_DEVICE"] = "1"
    report("forward: the layer, calls waiting for the device", layer_forward)
    del os.environ["MOERT_WAIT_FOR_DEVICE"]
    report("forward + training: the two artifacts through moert",
           lambda: (raw_forward(), raw_training()))
    report("forward + backward: the layer", step, before=clear)

    print("\n== host profile, layer forward (cProfile, 20 calls)")
    print(host_profile(layer_forward))
    print("\n== host profile, layer forward + backward (cProfile, 10 calls)")

    def step_cleared():
        clear()
        step()
    print(host_profile(step_cleared, calls=10))

    from torch.profiler import ProfilerActivity, profile
    for name, fn in (("forward", layer_forward),
                     ("fwd_bwd", step_cleared)):
        fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU,
                                 ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                fn()
                torch.cuda.synchronize()
        print(f"\n== torch.profiler, {name}: by self CPU time")
        print(prof.key_averages().table(sort_by="self_cpu_time_total",
                                        row_limit=18))
        print(f"\n== torch.profiler, {name}: by device time")
        print(prof.key_averages().table(sort_by="self_device_time_total",
                                        row_limit=18))
        prof.export_chrome_trace(f"{args.out}/trace-{args.preset}-{name}.json")


if __name__ == "__main__":
    main()
