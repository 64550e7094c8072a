"""The peers' peak memory over a training step, counted two ways (issue #11), and the step's
time (torch_baselines.py's own `bench`: median of 10 CUDA-event timings after 3 warm-ups).

usage: peer_memory.py [--impls grouped,scatter,sonic] [config ...]   (torch_baselines.py
beside it or on PYTHONPATH; ScatterMoE and SonicMoE are measured when importable)

`script`: as ../shared/bench/torch_baselines.py and sonic_bench.py count it. Their base is
taken after the warm-up steps, whose gradients are still allocated, so the base holds one set
of gradients and the first timed step's new gradients are added into them: the peak above that
base leaves out most of the gradients a step produces.

`counted`: as MoE-MLIR's `--report-memory` and high water count it: the gradients of the
warm-up are freed before the base is taken, so the peak is what the step allocates above its
inputs and weights, the gradients (dx, dw_gate, dw1, dw2) included.

Both come from the same steps on the same tensors; `grads_gib` is the gradients' own size.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_baselines as tb  # noqa: E402


def torch_step(fn, x, wr, w1, w2, k, gout):
    def step():
        fn(x, wr, w1, w2, k).backward(gout)
    return step, [x, wr, w1, w2]


def sonic_step(x, wr, w1, w2, k, gout):
    """SonicMoE's layer on the same weights in its layouts (w1 rows interleave gate and up)."""
    from sonicmoe import moe_TC_softmax_topk_layer
    E, H, two_f = w1.shape
    f = two_f // 2
    w1e = torch.empty(E, two_f, H, device=x.device, dtype=x.dtype)
    w1e[:, 0::2, :] = w1[:, :, :f].transpose(1, 2)
    w1e[:, 1::2, :] = w1[:, :, f:].transpose(1, 2)
    w2e = w2.transpose(1, 2).contiguous()
    rw = wr.t().contiguous()
    stream = torch.cuda.current_stream().cuda_stream

    def step():
        out, _, _ = moe_TC_softmax_topk_layer(x, rw, w1e.permute(1, 2, 0), None,
                                              w2e.permute(1, 2, 0), None, k, stream,
                                              "swiglu", False)
        out.backward(gout)
    return step, [x, rw, w1e, w2e]


def peaks(step, params, iters=5, warm=3):
    for p in params:
        p.requires_grad_(True)
    for _ in range(warm):
        step()
    torch.cuda.synchronize()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    # As the shared scripts do: the base still holds the warm-up's gradients.
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    script = torch.cuda.max_memory_allocated() - base
    for p in params:
        p.grad = None
    # Counted as MoE-MLIR counts: gradients freed first, then every step's peak.
    counted = 0
    for _ in range(iters):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        counted = max(counted, torch.cuda.max_memory_allocated() - base)
        for p in params:
            p.grad = None
    for p in params:
        p.requires_grad_(False)
    return script, counted, grads


def main():
    gib = 2.0 ** 30
    args = sys.argv[1:]
    wanted = {"grouped", "scatter", "sonic"}
    if args[:1] == ["--impls"]:
        wanted = set(args[1].split(","))
        args = args[2:]
    for name in args or list(tb.CONFIGS):
        T, H, Fd, E, k = tb.CONFIGS[name]
        x, wr, w1, w2 = tb.make(tb.CONFIGS[name])
        gout = torch.randn_like(x)
        impls = [("grouped", lambda: torch_step(tb.moe_grouped, x, wr, w1, w2, k, gout)),
                 ("scatter", lambda: torch_step(tb.moe_scatter, x, wr, w1, w2, k, gout)),
                 ("sonic", lambda: sonic_step(x, wr, w1, w2, k, gout))]
        torch_fns = {"grouped": tb.moe_grouped, "scatter": tb.moe_scatter}
        for impl, make_step in impls:
            if impl not in wanted:
                continue
            try:
                step, params = make_step()
                script, counted, grads = peaks(step, params)
                # The step's time as the shared script measures it (SonicMoE's
                # own script times it: ../shared/bench/sonic_bench.py).
                step_ms = (tb.bench(torch_fns[impl], (x, wr, w1, w2, k), True)[0]
                           if impl in torch_fns else None)
            except Exception as ex:  # not installed, or out of memory
                print(json.dumps(dict(cfg=name, impl=impl, error=str(ex)[:200])), flush=True)
                torch.cuda.empty_cache()
                continue
            print(json.dumps(dict(cfg=name, impl=impl, step_ms=step_ms,
                                  script_gib=round(script / gib, 3),
                                  counted_gib=round(counted / gib, 3),
                                  grads_gib=round(grads / gib, 3))), flush=True)
            del step, params
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
