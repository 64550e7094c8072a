#!/usr/bin/env python3
"""Sweeps the memory budget of a training step from the least planned peak
any placement reaches to beyond the save-everything peak (issue #12) and
checks the rules of moe-place-recomputation on each --report-memory:

  - the planned peak is at most the budget;
  - a tighter budget never gives a lower predicted time;
  - at or above the save-everything peak (no constraint), only what the
    cost model predicts is not slower to recompute is recomputed;
  - a budget one byte below the least is refused, naming the least.

With --run, also runs the step (moe-run --backward --check) at the least,
a middle and the largest budget, and on a GPU checks that the device memory
the call held beyond its results is within the budget.

  recompute_sweep.py SPEC_OR_PROGRAM [--backend cpu|cuda:sm_90a] [--run] [--entry NAME]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile


def compile_report(source, target, budget, out):
    args = ["moe-compile"] + (["--layer", source] if not source.endswith(".mlir") else [source])
    args += [f"--target={target}", "--backward", f"--memory-budget={budget}", f"--report-memory={out}"]
    return subprocess.run(args, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--run", action="store_true")
    ap.add_argument("--entry")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    report = os.path.join(tmp, "r.json")

    # The least: moe-compile names it when the budget is below it.
    p = compile_report(a.source, a.backend, 1, report)
    m = re.search(r"give --memory-budget=(\d+) or more", p.stderr)
    if p.returncode != 2 or not m:
        sys.exit(f"budget 1: expected exit 2 naming the least peak, got {p.returncode}: {p.stderr}")
    least = int(m.group(1))
    p = compile_report(a.source, a.backend, "100%", report)
    if p.returncode != 0:
        sys.exit(p.stderr)
    data = json.load(open(report))
    fn = a.entry or data["function"]
    entry = data["functions"][fn] if fn in data["functions"] else data
    every = entry["recomputation"]["save_all_peak_bytes"]
    print(f"least planned peak {least}, save everything {every}")
    p = compile_report(a.source, a.backend, least - 1, report)
    print("budget least-1:", "refused, naming the least" if p.returncode == 2 and
          f"give --memory-budget={least} or more" in p.stderr else f"NOT REFUSED ({p.returncode})")

    budgets = sorted({least, least + (every - least) // 4, (least + every) // 2,
                      least + 3 * (every - least) // 4, every, every + every // 4})
    previous, ok = None, True
    for budget in reversed(budgets):  # loosest first
        p = compile_report(a.source, a.backend, budget, report)
        if p.returncode != 0:
            print(f"budget {budget}: FAILED {p.stderr.strip()}")
            ok = False
            continue
        d = json.load(open(report))
        d = d["functions"].get(fn, d)
        rec = d["recomputation"]
        saved = [s["name"] for s in d["saved"]]
        recomputed = [s["name"] for s in d["recomputed"]]
        line = (f"budget {budget}: planned {rec['planned_peak_bytes']} "
                f"predicted {rec['predicted_ms']:.4f} ms saved [{', '.join(saved)}] "
                f"recomputed [{', '.join(recomputed)}]")
        if rec["planned_peak_bytes"] > budget:
            line += " OVER BUDGET"; ok = False
        if previous is not None and rec["predicted_ms"] < previous - 1e-9:
            line += " FASTER THAN A LOOSER BUDGET"; ok = False
        if budget >= every and recomputed and not any(
                r["recompute_ms"] <= 0 for r in d["recomputed"]):
            # Unconstrained, a value is recomputed only where the model
            # predicts recomputing it is not slower.
            line += " RECOMPUTES WHAT WOULD BE FASTER SAVED"; ok = False
        previous = rec["predicted_ms"]
        print(line)

    if a.run:
        for label, budget in (("min", least), ("mid", (least + every) // 2), ("max", every)):
            args = ["moe-run"] + (["--layer", a.source] if not a.source.endswith(".mlir") else [a.source])
            args += [f"--backend={a.backend}", "--backward", "--check", f"--memory-budget={budget}"]
            if a.entry:
                args += ["--entry", a.entry]
            p = subprocess.run(args, capture_output=True, text=True)
            passed = p.returncode == 0 and "CHECK PASSED" in p.stdout
            note = ""
            m = re.search(r"intermediates (-?\d+) bytes", p.stdout)
            if m:
                within = int(m.group(1)) <= budget
                note = ", device intermediates " + ("within the budget" if within else "OVER THE BUDGET")
                ok &= within
            print(f"budget {label}: {'CHECK PASSED' if passed else 'FAILED'}{note}")
            if not passed:
                print(p.stdout[-2000:], p.stderr[-2000:])
                ok = False
    print("sweep OK" if ok else "sweep FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
