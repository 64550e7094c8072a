#!/usr/bin/env python3
"""Turns the logs of bench/recompute_device.sh into the table and plot of
bench/RESULTS.md (issue #12: recomputation placement under a budget).

  bench/recompute_results.py LOGDIR [--costs .device/costs] [--svg bench/recompute-h200.svg]
                             [--append bench/RESULTS.md]

LOGDIR is $OUT/recompute of the device run (NAME.log per artifact). Prints a
Markdown table per preset and budget: what was saved, the budget, the
planned peak, the device memory the call held beyond its results, the
measured step time and the cost model's prediction (error in %), plus the
forwards; writes a self-contained SVG of step time against budget (no
plotting library needed). Checks, and says so in the output, that every
measured intermediate memory is within its budget and that the prediction
is within 10% of the measurement.
"""
import argparse
import glob
import json
import os
import re

NUM = r"([0-9]+(?:\.[0-9]+)?)"


def parse_log(path):
    text = open(path).read()
    r = {"name": os.path.basename(path)[:-4]}
    m = re.search(r"^time: median " + NUM + " ms", text, re.M)
    r["ms"] = float(m.group(1)) if m else None
    m = re.search(r"^device memory: high water (\d+) bytes.*results (\d+) bytes; "
                  r"intermediates (-?\d+) bytes(?: \(planned (\d+)\))?(?:; memory budget (\d+) bytes)?",
                  text, re.M)
    if m:
        r["high_water"], r["results"], r["intermediates"] = int(m.group(1)), int(m.group(2)), int(m.group(3))
        r["planned"] = int(m.group(4)) if m.group(4) else None
        r["budget"] = int(m.group(5)) if m.group(5) else None
    m = re.search(r"^prediction \(cost model, device ([^)]*)\): " + NUM + " ms", text, re.M)
    if m:
        r["device"], r["predicted"] = m.group(1), float(m.group(2))
    r["passed"] = "CHECK PASSED" in text
    return r


def mib(b):
    return f"{b / 2**20:,.0f} MiB" if b is not None else "-"


def svg(series, path):
    """series: {preset: [(budget_percent, measured_ms, predicted_ms)]}"""
    w, h, pad = 640, 360, 50
    pts = [p for s in series.values() for p in s]
    if not pts:
        return
    xmax = max(p[0] for p in pts) * 1.05
    ymax = max(max(p[1] or 0, p[2] or 0) for p in pts) * 1.1
    X = lambda v: pad + (w - 2 * pad) * v / xmax
    Y = lambda v: h - pad - (h - 2 * pad) * v / ymax
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<line x1="{pad}" y1="{h-pad}" x2="{w-pad}" y2="{h-pad}" stroke="black"/>',
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h-pad}" stroke="black"/>',
           f'<text x="{w/2}" y="{h-12}" text-anchor="middle">memory budget, % of the save-everything peak</text>',
           f'<text x="14" y="{h/2}" transform="rotate(-90 14 {h/2})" text-anchor="middle">training step, ms (solid measured, dashed predicted)</text>']
    for i in range(6):
        yv = ymax * i / 5
        out.append(f'<text x="{pad-4}" y="{Y(yv)+4}" text-anchor="end">{yv:.1f}</text>')
        xv = xmax * i / 5
        out.append(f'<text x="{X(xv)}" y="{h-pad+14}" text-anchor="middle">{xv:.0f}</text>')
    for k, (preset, s) in enumerate(sorted(series.items())):
        s = sorted(s)
        c = colors[k % len(colors)]
        for idx, dash in ((1, ""), (2, ' stroke-dasharray="4 3"')):
            p = [(X(a[0]), Y(a[idx])) for a in s if a[idx] is not None]
            if p:
                out.append(f'<polyline fill="none" stroke="{c}"{dash} points="' +
                           " ".join(f"{x:.1f},{y:.1f}" for x, y in p) + '"/>')
                for x, y in p:
                    out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{c}"/>')
        out.append(f'<text x="{w-pad-120}" y="{pad+14*k}" fill="{c}">{preset}</text>')
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logdir")
    ap.add_argument("--costs", default=".device/costs")
    ap.add_argument("--svg", default="bench/recompute-h200.svg")
    ap.add_argument("--append")
    a = ap.parse_args()
    logs = {r["name"]: r for r in map(parse_log, sorted(glob.glob(os.path.join(a.logdir, "*.log"))))}
    lines = ["| preset | budget | saved | budget bytes | planned peak | device intermediates | step (measured) | predicted | error |",
             "|---|---|---|---|---|---|---|---|---|"]
    series, problems = {}, []
    for name in sorted(n for n in logs if n.startswith("train-")):
        r = logs[name]
        preset, budget = name[len("train-"):].rsplit("-", 1)
        mem = {}
        mpath = os.path.join(a.costs, name + ".memory.json")
        if os.path.exists(mpath):
            mem = json.load(open(mpath))
        rec = mem.get("recomputation", {})
        saved = ", ".join(s["name"] for s in mem.get("saved", [])) or "nothing"
        err = (100 * (r["predicted"] / r["ms"] - 1)) if r.get("predicted") and r.get("ms") else None
        lines.append(f"| {preset} | {budget} | {saved} | {mib(rec.get('budget_bytes'))} | "
                     f"{mib(rec.get('planned_peak_bytes'))} | {mib(r.get('intermediates'))} | "
                     f"{r['ms']} ms | {r.get('predicted', '-')} ms | {err:+.1f}% |" if err is not None else
                     f"| {preset} | {budget} | {saved} | - | - | - | {r['ms']} | - | - |")
        if rec.get("budget_bytes") and r.get("intermediates") is not None and r["intermediates"] > rec["budget_bytes"]:
            problems.append(f"{name}: device intermediates {r['intermediates']} > budget {rec['budget_bytes']}")
        if err is not None and abs(err) > 10:
            problems.append(f"{name}: prediction off by {err:+.1f}%")
        if rec.get("save_all_peak_bytes"):
            series.setdefault(preset, []).append(
                (100.0 * rec["budget_bytes"] / rec["save_all_peak_bytes"], r["ms"], r.get("predicted")))
    for name in sorted(n for n in logs if n.startswith("fwd-")):
        r = logs[name]
        err = (100 * (r["predicted"] / r["ms"] - 1)) if r.get("predicted") and r.get("ms") else None
        lines.append(f"| {name[4:]} | forward | - | - | - | - | {r['ms']} ms | {r.get('predicted', '-')} ms | "
                     + (f"{err:+.1f}% |" if err is not None else "- |"))
        if err is not None and abs(err) > 10:
            problems.append(f"{name}: prediction off by {err:+.1f}%")
    checks = [n for n in logs if n.startswith("check-train-")]
    passed = [n for n in checks if logs[n]["passed"]]
    text = "\n".join(lines) + "\n\n" + \
        f"--check of the training step at every budget: {len(passed)} of {len(checks)} pass.\n" + \
        ("Every measured intermediate memory is within its budget and every prediction within 10%.\n"
         if not problems else "Problems:\n" + "\n".join("- " + p for p in problems) + "\n")
    print(text)
    svg(series, a.svg)
    print(f"plot: {a.svg}")
    if a.append:
        with open(a.append, "a") as f:
            f.write("\n" + text + f"\n![step time against budget]({os.path.basename(a.svg)})\n")


if __name__ == "__main__":
    main()
