#!/usr/bin/env python3
"""The cost model's prediction of expert parallelism on R GPUs (issue #14,
for the multi-GPU issue to verify): for each preset and R, the per-rank
program without and with the chunked overlap (the chunk count the cost
model picks), compiled by moe-compile with --report-cost; prints per rank
the kernels' time, the all-to-all time, how much of it runs beside the
kernels (hidden) and the layer's predicted time, as a Markdown table.

  bench/predict_ep.py [--moe-compile build/bin/moe-compile]
      [--target cuda:sm_90a] [--ranks 2 4 8] [--presets ...]

The link is the device's LINK row of lib/Analysis/CostModel/DeviceTables.def
(NVLink through NVSwitch for the H200); nothing runs on a GPU.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def predict(moe_compile, spec, target, workdir):
    report = os.path.join(workdir, "cost.json")
    proc = subprocess.run(
        [moe_compile, "--layer", spec, f"--target={target}",
         "-o", os.path.join(workdir, "layer.so"), f"--report-cost={report}"],
        capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"moe-compile --layer {spec} failed:\n{proc.stderr}")
    chunks = 1
    m = re.search(r"moe-overlap-communication: (\d+) chunks", proc.stderr)
    if m:
        chunks = int(m.group(1))
    cost = json.load(open(report))
    function = next(iter(cost["functions"].values()))
    return cost["device"], chunks, function


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--moe-compile",
                   default=os.path.join(ROOT, "build", "bin", "moe-compile"))
    p.add_argument("--target", default="cuda:sm_90a")
    p.add_argument("--ranks", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--presets", nargs="+",
                   default=["qwen3_30b_a3b", "olmoe", "mixtral"])
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for preset in args.presets:
            for ranks in args.ranks:
                for overlap in (False, True):
                    spec = f"{preset},ep={ranks}" + (",overlap=0" if overlap else "")
                    print(f"compiling {spec} ...", file=sys.stderr, flush=True)
                    device, chunks, f = predict(args.moe_compile, spec,
                                                args.target, workdir)
                    comm, hidden = f["communication_ms"], f["hidden_ms"]
                    rows.append((preset, ranks, chunks if overlap else 1,
                                 f["kernel_ms"], comm, hidden,
                                 100 * hidden / comm if comm else 0,
                                 f["total_ms"], device))
    print(f"Predicted per rank on {rows[0][-1]} (each rank's T is the preset's; "
          "times in ms)\n")
    print("| preset | GPUs | chunks | kernels | all-to-all | hidden | hidden share | layer |")
    print("|---|---|---|---|---|---|---|---|")
    for preset, ranks, chunks, kernels, comm, hidden, share, total, _ in rows:
        print(f"| {preset} | {ranks} | {chunks} | {kernels:.3f} | {comm:.3f} | "
              f"{hidden:.3f} | {share:.0f}% | {total:.3f} |")


if __name__ == "__main__":
    main()
