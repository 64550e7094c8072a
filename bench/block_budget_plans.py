#!/usr/bin/env python3
"""The largest qwen3_block batch whose planned intermediates fit a memory budget,
untiled and with attention tiled (issue #15's benchmark, the memory half; no GPU:
moe-compile's --report-memory gives the plan, and on the H200 every run's measured
intermediates have equalled it).

usage: block_budget_plans.py MOE_COMPILE [--target cuda:sm_90a] [--seq 4096]
         [--max-batch 64] [--budgets 0.5,1,2,4,8] [--torch torch_block.json]
         [--flags "--epilogue=scatter_add --experts-per-chunk=2"]
Prints, per budget (GiB), the largest batch that fits untiled, the largest that
fits with some tile count (and the fewest tiles that do), and, given a
torch_block.json of bench/block_device.sh, the PyTorch block's largest measured
batch within the budget (its measured peak above inputs). --flags adds moe-compile
options to every plan (e.g. experts a chunk, which shrink the MoE's phase)."""
import argparse, json, os, subprocess, sys, tempfile

def peak(compiler, target, spec, flags):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "plan.json")
        subprocess.run([compiler, "--block", spec, "--target=" + target,
                        "--report-memory=" + path] + flags, check=True,
                       stdout=subprocess.DEVNULL)
        return json.load(open(path))["peak_intermediate_bytes"]

def main():
    p = argparse.ArgumentParser()
    p.add_argument("compiler")
    p.add_argument("--target", default="cuda:sm_90a")
    p.add_argument("--seq", type=int, default=4096)
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--budgets", default="0.5,1,2,4,8")
    p.add_argument("--torch")
    p.add_argument("--flags", default="")
    a = p.parse_args()
    gib = 2.0 ** 30
    plans = {}  # batch -> {tiles: bytes}
    for batch in range(1, a.max_batch + 1):
        plans[batch] = {}
        for tiles in (1, 2, 4, 8, 16):
            if tiles <= batch and batch % tiles == 0:
                spec = "qwen3_block,batch=%d,seq=%d,bta_tiles=%d" % (batch, a.seq, tiles)
                plans[batch][tiles] = peak(a.compiler, a.target, spec, a.flags.split())
        print("batch %3d: %s" % (batch, ", ".join(
            "%d tiles %.1f MiB" % (t, b / 2 ** 20) for t, b in plans[batch].items())),
            file=sys.stderr)
    torch = {}
    if a.torch:
        for row in json.load(open(a.torch)):
            torch[int(row["batch"])] = row
    print("| budget | largest batch, untiled (plan) | largest batch, tiled (plan, fewest tiles) | PyTorch block, largest measured batch (peak) |")
    print("|---|---|---|---|")
    for budget in (float(x) for x in a.budgets.split(",")):
        limit = budget * gib
        untiled = max((b for b in plans if plans[b].get(1, 1e30) <= limit), default=0)
        tiled, tiles = 0, 0
        for b in plans:
            fits = [t for t, bytes_ in plans[b].items() if bytes_ <= limit]
            if fits and b > tiled:
                tiled, tiles = b, min(fits)
        fit_torch = [b for b, r in torch.items() if r["peak_above_inputs_gib"] <= budget]
        torch_text = ("%d (%.2f GiB)" % (max(fit_torch), torch[max(fit_torch)]["peak_above_inputs_gib"])
                      if fit_torch else ("none measured" if torch else "-"))
        print("| %g GiB | %s | %s | %s |" % (
            budget,
            "%d (%.1f MiB)" % (untiled, plans[untiled][1] / 2 ** 20) if untiled else "none",
            "%d (%d tiles, %.1f MiB)" % (tiled, tiles, plans[tiled][tiles] / 2 ** 20) if tiled else "none",
            torch_text))

if __name__ == "__main__":
    main()
