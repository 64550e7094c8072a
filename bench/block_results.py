#!/usr/bin/env python3
"""Turns a bench/block_device.sh run into the table and plot of bench/RESULTS.md
(issue #15: the Qwen3-like block at seq 4096 across batches and tile counts).

  bench/block_results.py LOGDIR [--svg bench/block-h200.svg]

LOGDIR holds block_device.log and torch_block.json. Prints a Markdown table per
batch and tile count: time per token, planned and measured intermediates, the
gate/up GEMM's TFLOP/s at its tokens per expert, and PyTorch's block beside the
untiled run; writes a self-contained SVG (no plotting library) with two panels:
time per token and peak memory against the batch, MoE-MLIR untiled and tiled
against PyTorch.
"""
import argparse
import json
import os
import re

NUM = r"([0-9]+(?:\.[0-9]+)?)"


def parse_runs(log):
    """{(batch, tiles, slices): {...}} of the mma.sync-attention timing runs
    (time-bB-tN[-sS]: S row slices, 1 when the name has none)."""
    runs, current = {}, None
    for line in open(log):
        m = re.match(r"-- time-b(\d+)-t(\d+)(?:-s(\d+))? \(rc \d+\): time: median " + NUM +
                     r" ms .* " + NUM + " us/token", line)
        if m:
            current = {"ms": float(m.group(4)), "us_per_token": float(m.group(5))}
            runs[(int(m.group(1)), int(m.group(2)), int(m.group(3) or 1))] = current
            continue
        if line.startswith("--"):
            current = None  # the SIMT runs and anything else
            continue
        if current is None:
            continue
        m = re.search(r"intermediates (\d+) bytes \(planned (\d+)\)", line)
        if m:
            current["measured"], current["planned"] = int(m.group(1)), int(m.group(2))
        m = re.search(r"silu_glu: " + NUM + r" ms, (\d+) TFLOP/s at (\d+) tokens", line)
        if m:
            current["glu_tflops"], current["tokens_per_expert"] = int(m.group(2)), int(m.group(3))
    return runs


def panel(out, x0, w, h, title, xlabel, series, ymax, legend_right):
    """One line chart at x0: series = [(label, color, dash, [(x, y)])]; the
    legend in the top corner the lines leave free."""
    pad = 46
    xs = [x for _, _, _, pts in series for x, _ in pts]
    xmax = max(xs) * 1.1
    X = lambda v: x0 + pad + (w - 2 * pad) * v / xmax
    Y = lambda v: h - pad - (h - 2 * pad) * v / ymax
    out += [f'<line x1="{x0+pad}" y1="{h-pad}" x2="{x0+w-pad}" y2="{h-pad}" stroke="black"/>',
            f'<line x1="{x0+pad}" y1="{pad}" x2="{x0+pad}" y2="{h-pad}" stroke="black"/>',
            f'<text x="{x0+w/2}" y="{pad-18}" text-anchor="middle" font-weight="bold">{title}</text>',
            f'<text x="{x0+w/2}" y="{h-12}" text-anchor="middle">{xlabel}</text>']
    for i in range(6):
        yv = ymax * i / 5
        out.append(f'<text x="{x0+pad-4}" y="{Y(yv)+4}" text-anchor="end">{yv:.2f}</text>')
    for xv in sorted(set(xs)):
        out.append(f'<text x="{X(xv)}" y="{h-pad+14}" text-anchor="middle">{xv}</text>')
    for k, (label, color, dash, pts) in enumerate(series):
        pts = sorted(pts)
        style = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline fill="none" stroke="{color}"{style} points="' +
                   " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in pts) + '"/>')
        out += [f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="2.5" fill="{color}"/>' for x, y in pts]
        lx = x0 + w - pad - 4 if legend_right else x0 + pad + 8
        anchor = "end" if legend_right else "start"
        out.append(f'<text x="{lx}" y="{pad+14*k}" text-anchor="{anchor}" '
                   f'fill="{color}">{label}</text>')


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logdir")
    ap.add_argument("--svg", default="bench/block-h200.svg")
    a = ap.parse_args()
    runs = parse_runs(os.path.join(a.logdir, "block_device.log"))
    torch = {r["batch"]: r for r in json.load(open(os.path.join(a.logdir, "torch_block.json")))}
    lines = ["| batch | tiles | row slices | µs / token | planned / measured intermediates | gate/up GEMM (tokens / expert) | PyTorch µs / token (peak above inputs) |",
             "|---|---|---|---|---|---|---|"]
    for (batch, tiles, slices), r in sorted(runs.items()):
        t = torch.get(batch) if tiles == 1 and slices == 1 else None
        lines.append(
            f"| {batch} | {tiles} | {slices} | {r['us_per_token']:.3f} | "
            f"{r.get('planned', 0) / 2**20:.1f} / {r.get('measured', 0) / 2**20:.1f} MiB | "
            f"{r.get('glu_tflops', '-')} TFLOP/s ({r.get('tokens_per_expert', '-')}) | " +
            (f"{t['us_per_token']:.3f} ({t['peak_above_inputs_gib']:.2f} GiB) |" if t else "|"))
    print("\n".join(lines))

    # A line per tile count (each batch's run with the fewest row slices).
    by_tiles = {}
    for (batch, tiles, slices), r in sorted(runs.items(), key=lambda kv: -kv[0][2]):
        by_tiles.setdefault(tiles, {})[batch] = r
    by_tiles = {n: sorted(pts.items()) for n, pts in by_tiles.items()}
    colors = {1: "#1f77b4", 2: "#2ca02c", 4: "#9467bd"}
    time_series = [(f"MoE-MLIR, {n} tile{'s' if n > 1 else ''}", colors.get(n, "black"),
                    "" if n == 1 else "4 3", [(b, r["us_per_token"]) for b, r in pts])
                   for n, pts in sorted(by_tiles.items())]
    time_series.append(("PyTorch (SDPA flash + grouped MoE)", "#d62728", "",
                        [(b, t["us_per_token"]) for b, t in torch.items()]))
    memory_series = [("MoE-MLIR, planned = measured", "#1f77b4", "",
                      [(b, r["measured"] / 2**30) for b, r in by_tiles.get(1, [])
                       if "measured" in r]),
                     ("PyTorch, peak above inputs", "#d62728", "",
                      [(b, t["peak_above_inputs_gib"]) for b, t in torch.items()])]
    w, h = 420, 320
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w}" height="{h}" '
           'font-family="sans-serif" font-size="11">']
    tmax = max(y for _, _, _, pts in time_series for _, y in pts) * 1.15
    panel(out, 0, w, h, "qwen3_block, seq 4096: µs per token", "batch (sequences)",
          time_series, tmax, legend_right=True)
    mmax = max(y for _, _, _, pts in memory_series for _, y in pts) * 1.15
    panel(out, w, w, h, "intermediate memory, GiB", "batch (sequences)", memory_series, mmax,
          legend_right=False)
    out.append("</svg>")
    open(a.svg, "w").write("\n".join(out) + "\n")
    print(f"plot: {a.svg}")


if __name__ == "__main__":
    main()
