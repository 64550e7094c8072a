#!/usr/bin/env python3
"""Checks moe-batch-tile-attention's choice of tiles under a memory budget
(moe-compile/moe-run --block SPEC --memory-budget=...) against the plans it
chooses from (issue #15):

  - every candidate N (dividing the batch) that the report lists plans the
    peak that `--block SPEC,bta_tiles=N --report-memory` reports, and the
    attention's planned buffers shrink as N grows;
  - at a budget of each candidate's peak, and one byte under it, the choice
    is the fewest tiles whose peak fits, within the budget;
  - a percentage is of the untiled peak;
  - one byte under the least peak is refused (exit 2), naming the least;
  - bta_tiles=N given with a budget is kept when it fits and refused,
    naming the fewest tiles that fit, when it does not.

With --run, also runs the block (moe-run --check) at each candidate's peak.

  bta_budget_sweep.py SPEC [--run]
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile

ok = True


def problem(message):
    global ok
    ok = False
    print("FAIL:", message)


def compile_report(spec, out, budget=None):
    args = ["moe-compile", "--block", spec, f"--report-memory={out}"]
    if budget is not None:
        args.append(f"--memory-budget={budget}")
    p = subprocess.run(args, capture_output=True, text=True)
    data = json.load(open(out)) if p.returncode == 0 else None
    return p, data


def plural(n):
    return f"{n} tile" + ("" if n == 1 else "s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--run", action="store_true")
    a = ap.parse_args()
    report = os.path.join(tempfile.mkdtemp(), "r.json")

    p, data = compile_report(a.spec, report, "100%")
    if p.returncode != 0:
        sys.exit(p.stderr)
    bta = data["bta"]
    if bta["tiles"] != 1:
        problem(f"100% chose {bta['tiles']} tiles, not 1")
    peaks = {c["tiles"]: c["peak_intermediate_bytes"] for c in bta["candidates"]}
    batch = bta["batch"]
    if sorted(peaks) != [n for n in range(1, batch + 1) if batch % n == 0]:
        problem(f"candidates {sorted(peaks)} are not the divisors of {batch}")
    untiled, least = peaks[1], min(peaks.values())
    if bta["untiled_peak_bytes"] != untiled or bta["least_peak_bytes"] != least:
        problem("the report's untiled/least peaks are not its candidates'")

    # Each candidate's peak is the plan of that N given, and the
    # attention's buffers shrink with N.
    attention = {}
    for n in sorted(peaks):
        p, plan = compile_report(f"{a.spec},bta_tiles={n}", report)
        if p.returncode != 0:
            sys.exit(p.stderr)
        attention[n] = plan["by_category"].get("attention", 0)
        scores = {b["name"]: b["bytes"] for b in plan["buffers"]}.get("attention.scores")
        print(f"{plural(n)}: planned peak {plan['peak_intermediate_bytes']}, "
              f"attention buffers {attention[n]}, scores {scores}")
        if plan["peak_intermediate_bytes"] != peaks[n]:
            problem(f"{plural(n)}: the budget's candidate plans {peaks[n]}, "
                    f"bta_tiles={n} plans {plan['peak_intermediate_bytes']}")
        if n > 1:
            previous = max(m for m in peaks if m < n)
            if not attention[n] < attention[previous]:
                problem(f"attention's buffers do not shrink from {plural(previous)} to {plural(n)}")
            if scores * n != scores_untiled:
                problem(f"{plural(n)}: scores {scores} bytes are not 1/{n} of the untiled {scores_untiled}")
        else:
            scores_untiled = scores

    def fewest_within(budget):
        fits = [n for n in sorted(peaks) if peaks[n] <= budget]
        return fits[0] if fits else None

    def expect(label, budget, spec=a.spec):
        p, d = compile_report(spec, report, budget)
        want = fewest_within(budget if isinstance(budget, int)
                             else int(float(budget[:-1]) / 100.0 * untiled))
        if p.returncode != 0:
            problem(f"{label}: {p.stderr.strip()}")
            return
        b = d["bta"]
        line = f"{label}: {plural(b['tiles'])} ({b['reason']})"
        if b["tiles"] != want:
            line += f" EXPECTED {plural(want)}"
            problem(line)
        if b["planned_peak_bytes"] > b["budget_bytes"]:
            problem(f"{label}: planned {b['planned_peak_bytes']} over the budget {b['budget_bytes']}")
        if d["peak_intermediate_bytes"] != b["planned_peak_bytes"]:
            problem(f"{label}: the plan peaks at {d['peak_intermediate_bytes']}, the choice said {b['planned_peak_bytes']}")
        print(line)

    for n in sorted(peaks):
        expect(f"budget at the {n}-tile peak", peaks[n])
        if peaks[n] > least:
            expect(f"budget 1 byte under the {n}-tile peak", peaks[n] - 1)
    for n in sorted(peaks):
        # The smallest percentage (4 decimals) at or above the peak.
        percent = math.ceil(peaks[n] / untiled * 1e6) / 1e4
        expect(f"budget {percent}% (the {n}-tile peak)", f"{percent}%")

    p, _ = compile_report(a.spec, report, least - 1)
    named = f"give --memory-budget={least} or more" in p.stderr
    print("budget 1 byte under the least:",
          "refused, naming the least" if p.returncode == 2 and named and
          p.stderr.count("error:") == 1 else f"NOT REFUSED ({p.returncode}): {p.stderr}")

    # bta_tiles given: kept within the budget, refused over it.
    expect("bta_tiles=1 at the untiled peak", untiled, f"{a.spec},bta_tiles=1")
    below = [v for v in peaks.values() if v < untiled]
    if below:
        over = max(below)  # a budget the untiled plan exceeds
        p, _ = compile_report(f"{a.spec},bta_tiles=1", report, over)
        m = re.search(r"bta_tiles=1 plans a peak of (\d+) bytes .* the fewest "
                      r"tiles within it are (\d+)", p.stderr)
        if p.returncode == 2 and m and int(m.group(1)) == untiled and \
                int(m.group(2)) == fewest_within(over):
            print("bta_tiles=1 under the untiled peak: refused, naming the fewest tiles that fit")
        else:
            problem(f"bta_tiles=1 under the untiled peak: {p.returncode} {p.stderr}")

    if a.run:
        for n in sorted(peaks):
            p = subprocess.run(["moe-run", "--block", a.spec, f"--memory-budget={peaks[n]}",
                                "--check"], capture_output=True, text=True)
            m = re.search(r"batch tiling on attention: (\d+) tiles? of", p.stdout)
            passed = p.returncode == 0 and "CHECK PASSED" in p.stdout
            chosen = int(m.group(1)) if m else None
            print(f"run at the {n}-tile peak: {plural(chosen) if m else 'no tiling line'}, "
                  f"{'CHECK PASSED' if passed else 'FAILED ' + p.stdout + p.stderr}")
            if not passed or chosen != fewest_within(peaks[n]):
                problem(f"run at the {n}-tile peak")
    print("sweep OK" if ok else "sweep FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
