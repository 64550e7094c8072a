#!/usr/bin/env python3
"""Calibrates the cost model's device table from measured profiles.

  collect LOG... -o PROFILE.json --device ID
      Reads moe-run logs (--repeat N --profile), one per artifact, named
      NAME.log, into the profile format of bench/logs/profile-*.json.
  fit PROFILE.json... --costs DIR... [--leave-one-out] [--write]
      DIR holds NAME.json, the `moe-compile --report-cost` of each artifact
      (what bench/compile_recompute_artifacts.sh writes). Fits, per kernel
      class of the device, the two scales of
          ms = compute_scale * flops / rate + bytes_scale * bytes / bandwidth
               + launches * launch [+ wave_us * waves]
      by non-negative least squares over every run that measured the class
      (the per-wave time only for tiled GEMMs: launches x waves of tiles),
      then the launch cost from the kernels no row names and the
      synchronization cost from the layer times; prints the prediction
      against each measurement and, with --write, rewrites the device's rows
      of the table (other devices are kept as they are).

numpy only; no network. The rule that groups a measured kernel under the op
it comes from is moe-run's (tools/moe-run/RunMain.cpp, predictedGroupOf).
"""
import argparse
import json
import os
import re
import sys

import numpy as np

PREDICTED = [
    "moek_route", "moek_rank_assignments", "moek_exclusive_scan",
    "moek_assignment_rows", "moek_row_assignments", "moek_gather_rows",
    "moek_grouped_matmul_store", "moek_grouped_matmul_scatter_store",
    "moek_grouped_matmul_silu_glu",
    "moek_grouped_matmul_gelu_glu", "moek_grouped_matmul_scatter_add",
    "moek_grouped_matmul_store_transposed_b",
    "moek_grouped_matmul_scatter_add_transposed_b", "moek_glu", "moek_combine_rows", "moek_expert_loads",
    "moek_grouped_glu_backward", "moek_grouped_weight_grad",
    "moek_grouped_weight_grad_warpgroup",
    "moek_grouped_input_grad", "moek_route_backward", "moek_route_backward_dx",
    "moek_route_backward_dw_gate", "fill", "linalg_map", "copy"]


# Predicted as kernels, but the GPU runs them as driver memsets and copies,
# which no profile lists: their time is in the layer's, beside the kernels'.
NOT_PROFILED = {"fill", "copy"}


def group_of(kernel):
    best = ""
    for name in PREDICTED:
        if (kernel == name or kernel.startswith(name + "_")) and len(name) > len(best):
            best = name
    return best


def sections(path):
    """(name, text) of each run in a log: a file of one moe-run (named after
    the file), or a device script's log of several, each opened by a line
    `-- NAME (rc N): ...` (bench/backward_device.sh, recompute_device.sh)."""
    text = open(path).read()
    starts = list(re.finditer(r"^-- (\S+) \(rc -?[0-9]+\): ", text, re.M))
    if not starts:
        name = os.path.basename(path)
        yield (name[:-4] if name.endswith(".log") else name), text
        return
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        # The script folds moe-run's first lines into the header line.
        yield m.group(1), text[m.end():end].replace(" time: median", "\ntime: median")


def collect(args):
    runs = []
    for path, name, text in ((p, n, t) for p in args.logs for n, t in sections(p)):
        m = re.search(r"^time: median ([0-9.]+) ms", text, re.M)
        if not m:
            print(f"{path}: no 'time: median' line, skipped", file=sys.stderr)
            continue
        kernels, other = {}, 0.0
        table = text.split("ms/run   share  launches  kernel", 1)
        if len(table) == 2:
            for line in table[1].splitlines()[1:]:
                parts = line.split()
                if len(parts) != 4 or not parts[1].endswith("%"):
                    break
                group = group_of(parts[3])
                if group:
                    kernels[group] = kernels.get(group, 0.0) + float(parts[0])
                else:
                    other += float(parts[0])
        # A table cut short (a device script prints its first rows) leaves
        # the rest of the profile's kernel time to the unnamed kernels.
        total = re.search(r"^profile: [0-9]+ kernels, ([0-9.]+) ms of kernel time", text, re.M)
        listed = sum(kernels.values()) + other
        if total and float(total.group(1)) > listed:
            other += float(total.group(1)) - listed
        run = {"name": name, "layer_ms": float(m.group(1)),
               "kernels_ms": kernels, "other_ms": other}
        # The layer a unit test recompiles to check the prediction: the
        # preset the name says, the training step when --backward.
        if preset_of(name) != name:
            run["spec"] = preset_of(name)
            run["backward"] = args.backward
            # The schedule and the budget it was compiled with (the names of
            # bench/compile_recompute_artifacts.sh and moe-run's log line).
            if "-chunk1-" in name:
                run["experts_per_chunk"] = 1
            b = re.search(r"memory budget ([0-9]+) bytes", text)
            if b:
                run["memory_budget_bytes"] = int(b.group(1))
        runs.append(run)
    json.dump({"device": args.device, "source": "bench/calibrate_cost_model.py collect "
               + " ".join(os.path.basename(p) for p in args.logs), "runs": runs},
              open(args.output, "w"), indent=2)
    print(f"wrote {args.output}: {len(runs)} runs")


def read_table(path):
    devices, kernels = {}, {}
    for line in open(path):
        m = re.match(r'DEVICE\("([^"]+)", "([^"]*)", (.*)\)\s*$', line)
        if m:
            nums = [float(v) for v in m.group(3).split(",")]
            devices[m.group(1)] = {"description": m.group(2), "matrix": nums[0],
                                   "simt": nums[1], "bw": nums[2], "launch": nums[3],
                                   "sync": nums[4], "multiprocessors": int(nums[5])}
        m = re.match(r'KERNEL\("([^"]+)", "([^"]+)", ([0-9.eE+-]+), ([0-9.eE+-]+)\)', line)
        if m:
            kernels.setdefault(m.group(1), {})[m.group(2)] = (
                float(m.group(3)), float(m.group(4)), 0.0)
        m = re.match(r'WAVE\("([^"]+)", "([^"]+)", ([0-9.eE+-]+)\)', line)
        if m and m.group(2) in kernels.get(m.group(1), {}):
            cs, bs, _ = kernels[m.group(1)][m.group(2)]
            kernels[m.group(1)][m.group(2)] = (cs, bs, float(m.group(3)))
    return devices, kernels


def nnls(a, b):
    """Least squares of a[n,m] x = b with x >= 0, m small: the best of the
    unconstrained fits on every subset of the columns that stays >= 0."""
    m = a.shape[1]
    best, best_err = np.zeros(m), float(np.sum(b ** 2))
    for mask in range(1, 1 << m):
        cols = [j for j in range(m) if mask >> j & 1]
        x_sub, *_ = np.linalg.lstsq(a[:, cols], b, rcond=None)
        if (x_sub < 0).any():
            continue
        x = np.zeros(m)
        x[cols] = x_sub
        err = float(np.sum((a @ x - b) ** 2))
        if err < best_err:
            best, best_err = x, err
    return best


def fit_class(a, b, one_scale=False):
    """(compute_scale, bytes_scale, wave_us) of one class; a's columns are
    the compute, bytes and (tiled GEMMs) per-wave terms at scale 1. With
    one_scale, compute_scale == bytes_scale: one efficiency for the
    roofline sum, which extrapolates to other shapes better than two scales
    fitted to few."""
    waves = a[:, 2] if a.shape[1] > 2 and (a[:, 2] > 0).any() else None
    if one_scale:
        cols = [a[:, 0] + a[:, 1]] + ([waves] if waves is not None else [])
        x = nnls(np.stack(cols, axis=1), b)
        return (x[0], x[0], x[1] if waves is not None else 0.0)
    if waves is None:
        x = nnls(a[:, :2], b)
        return (x[0], x[1], 0.0)
    return tuple(nnls(a[:, :3], b))


def load_runs(args):
    """The measured runs of the profiles that have a cost report, with it."""
    runs, device_id = [], None
    for path in args.profiles:
        p = json.load(open(path))
        device_id = device_id or p["device"]
        runs += p["runs"]
    costs = {}
    for run in runs:
        found = [os.path.join(d, run["name"] + ".json") for d in args.costs]
        found = [f for f in found if os.path.exists(f)]
        if not found:
            print(f"no cost report {run['name']}.json in {' '.join(args.costs)}: run skipped",
                  file=sys.stderr)
            continue
        costs[run["name"]] = json.load(open(found[0]))["kernels"]
    return device_id, [r for r in runs if r["name"] in costs], costs


class Model:
    """The device's rates and per-class scales, fitted to some runs."""

    def __init__(self, dev, kernels, costs, one_scale=False):
        self.dev, self.fitted, self.costs = dict(dev), dict(kernels), costs
        self.one_scale = one_scale

    def rate(self, cls):
        return (self.dev["matrix"] if cls.endswith(".tc") else self.dev["simt"]) * 1e12

    def predicted_by_name(self, run):
        out = {}
        for k in self.costs[run["name"]]:
            e = out.setdefault(k["name"], {"flops": 0.0, "bytes": 0.0, "launches": 0,
                                           "waves": 0.0, "class": k["class"]})
            # Tiled GEMMs are priced by their waves (the report's wave_flops:
            # launches x waves x CTA slots x tile flops); reports older than
            # the wave term have flops only.
            e["flops"] += k.get("wave_flops", k["flops"])
            e["bytes"] += k["bytes"]; e["launches"] += k["launches"]
            if k.get("wave_slots", 0) > 0 and k.get("tiles_per_launch", 0) > 0:
                e["waves"] += k["launches"] * k["waves_per_launch"]
        return out

    def scales(self, cls):
        if cls in self.fitted:
            return self.fitted[cls]
        return self.fitted.get("default" + cls[cls.rfind("."):], (1.0, 1.0, 0.0))

    def kernel_ms(self, e, launch=True):
        cs, bs, wave_us = self.scales(e["class"])
        return (cs * e["flops"] / self.rate(e["class"]) * 1e3
                + bs * e["bytes"] / (self.dev["bw"] * 1e9) * 1e3
                + wave_us * e["waves"] * 1e-3
                + (e["launches"] * self.dev["launch"] * 1e-3 if launch else 0.0))

    def layer_ms(self, run):
        return self.dev["sync"] * 1e-3 + sum(self.kernel_ms(e) for e in
                                             self.predicted_by_name(run).values())

    def fit(self, runs):
        if self.launches_vary(runs):
            # The same kernels measured at 1 and at 64-256 launches per call
            # (all experts per launch, one per launch): the launch cost is
            # what makes the many-launch runs slower beyond their waves. The
            # value (0-40 us by 0.25) whose refitted scales give the least
            # relative error over the measured kernels.
            best = min(np.arange(0.0, 40.001, 0.25),
                       key=lambda us: self.fit_scales(runs, us).kernel_error(runs))
            self.fit_scales(runs, float(best))
        else:
            self.fit_scales(runs, self.dev["launch"])
            self.fit_launch_from_unnamed(runs)
        self.fit_sync(runs)
        return self

    def launches_vary(self, runs):
        counts = {}
        for run in runs:
            for n, e in self.predicted_by_name(run).items():
                if n in run["kernels_ms"]:
                    counts.setdefault(e["class"], set()).add(e["launches"])
        return any(len(c) > 1 for c in counts.values())

    def kernel_error(self, runs):
        """Squared relative error over the measured kernels of 50 us or more
        (below, launch noise)."""
        err = 0.0
        for run in runs:
            for n, e in self.predicted_by_name(run).items():
                ms = run["kernels_ms"].get(n, 0.0)
                if ms >= 0.05:
                    err += (self.kernel_ms(e) / ms - 1) ** 2
        return err

    def fit_scales(self, runs, launch_us):
        dev, rate = self.dev, self.rate
        dev["launch"] = launch_us
        rows = {}
        for run in runs:
            pred = self.predicted_by_name(run)
            for name, ms in run["kernels_ms"].items():
                if name not in pred:
                    continue
                e = pred[name]
                rows.setdefault(e["class"], []).append(
                    (e["flops"] / rate(e["class"]) * 1e3, e["bytes"] / (dev["bw"] * 1e9) * 1e3,
                     e["waves"] * 1e-3, ms - e["launches"] * dev["launch"] * 1e-3))
        # Runs measured as a whole (the CPU: no per-kernel profile) calibrate
        # the default class of their kernels from the layer time.
        for run in runs:
            if run["kernels_ms"]:
                continue
            pred = self.predicted_by_name(run)
            cls = ("default.tc" if any(e["class"].endswith(".tc") for e in pred.values())
                   else "default.simt")
            rows.setdefault(cls, []).append(
                (sum(e["flops"] / rate(e["class"]) for e in pred.values()) * 1e3,
                 sum(e["bytes"] for e in pred.values()) / (dev["bw"] * 1e9) * 1e3,
                 0.0, run["layer_ms"] - dev["sync"] * 1e-3
                 - sum(e["launches"] for e in pred.values()) * dev["launch"] * 1e-3))
        for cls, r in sorted(rows.items()):
            a = np.array([x[:3] for x in r]); b = np.array([x[3] for x in r])
            # Relative errors: a 25 ms kernel of one preset must not outweigh
            # the 5 ms kernel of the same class in another; below 0.2 ms
            # (launch noise, tiny kernels aliased to a big one's class)
            # absolute again, so they do not steer the class.
            w = 1.0 / np.maximum(np.abs(b), 0.2)
            a, b = a * w[:, None], b * w
            self.fitted[cls] = tuple(float(v) for v in fit_class(
                a, b, one_scale=self.one_scale and cls.endswith(".tc")))
        return self

    def fit_launch_from_unnamed(self, runs):
        """Launch cost from the kernels no measured row names (routing,
        fills): profiles that ran every kernel once per call."""
        dev = self.dev
        num, den = 0.0, 0.0
        for run in runs:
            if not run["kernels_ms"] or "other_ms" not in run:
                continue
            pred = self.predicted_by_name(run)
            rest = [e for n, e in pred.items()
                    if n not in run["kernels_ms"] and n not in NOT_PROFILED]
            work = sum(self.kernel_ms(e, launch=False) for e in rest)
            n = sum(e["launches"] for e in rest)
            num += (run.get("other_ms", 0.0) - work) * n; den += n * n
        if den > 0:
            dev["launch"] = max(0.0, num / den * 1e3)

    def fit_sync(self, runs):
        dev = self.dev
        # Synchronization: what the layer takes beyond its kernels and the
        # fills and copies (driver memsets and copies, in no profile).
        gaps = [r["layer_ms"] - sum(r["kernels_ms"].values()) - r.get("other_ms", 0.0)
                - sum(self.kernel_ms(e) for n, e in self.predicted_by_name(r).items()
                      if n in NOT_PROFILED)
                for r in runs if r["kernels_ms"]]
        # The median: one slow call (a 2.7 ms gap in one of the 2026-11-29
        # training runs, 0.1 ms in another of the same step) must not shift
        # every prediction.
        if gaps:
            dev["sync"] = max(0.0, float(np.median(gaps)) * 1e3)


def preset_of(name):
    m = re.search(r"(mixtral|qwen3_30b_a3b|olmoe)", name)
    return m.group(1) if m else name


def fit(args):
    table_path = args.table
    devices, kernels = read_table(table_path)
    device_id, runs, costs = load_runs(args)
    model = Model(devices[device_id], kernels.get(device_id, {}), costs,
                  args.one_scale).fit(runs)
    dev = model.dev

    print(f"device {device_id}: launch {dev['launch']:.2f} us, sync {dev['sync']:.1f} us")
    for cls, (cs, bs, wave_us) in sorted(model.fitted.items()):
        print(f"  {cls:45s} compute_scale {cs:.4f}  bytes_scale {bs:.4f}"
              + (f"  wave {wave_us:.2f} us" if wave_us > 0 else ""))
    print(f"{'run':32s} {'predicted':>10s} {'measured':>10s} {'error':>8s}  (in sample)")
    worst = 0.0
    for run in runs:
        for n, e in model.predicted_by_name(run).items():
            if n in run["kernels_ms"]:
                ms = model.kernel_ms(e)
                print(f"  {n:30s} {ms:10.3f} {run['kernels_ms'][n]:10.3f} "
                      f"{100 * (ms / run['kernels_ms'][n] - 1):+7.1f}%")
        total = model.layer_ms(run)
        err = 100 * (total / run["layer_ms"] - 1)
        worst = max(worst, abs(err))
        print(f"{run['name']:32s} {total:10.3f} {run['layer_ms']:10.3f} {err:+7.1f}%")
    print(f"worst layer error (in sample): {worst:.1f}%")

    if args.leave_one_out:
        # Each preset predicted by a fit to the other presets' runs alone:
        # an honest error for a shape the table has not seen.
        print(f"{'run (preset left out of the fit)':32s} {'predicted':>10s} "
              f"{'measured':>10s} {'error':>8s}")
        worst = 0.0
        for preset in sorted({preset_of(r["name"]) for r in runs}):
            rest = [r for r in runs if preset_of(r["name"]) != preset]
            held = Model(devices[device_id], kernels.get(device_id, {}), costs,
                         args.one_scale).fit(rest)
            for run in runs:
                if preset_of(run["name"]) != preset:
                    continue
                total = held.layer_ms(run)
                err = 100 * (total / run["layer_ms"] - 1)
                worst = max(worst, abs(err))
                print(f"{run['name']:32s} {total:10.3f} {run['layer_ms']:10.3f} {err:+7.1f}%")
        print(f"worst layer error (leave one preset out): {worst:.1f}%")

    if args.write:
        lines = open(table_path).read().splitlines()
        out, written = [], False
        for line in lines:
            if line.startswith(f'DEVICE("{device_id}"'):
                d = dev
                out.append(f'DEVICE("{device_id}", "{d["description"]}", {d["matrix"]:.1f}, '
                           f'{d["simt"]:.3f}, {d["bw"]:.1f}, {d["launch"]:.2f}, {d["sync"]:.1f}, {d["multiprocessors"]})')
                for cls, (cs, bs, _) in sorted(model.fitted.items()):
                    out.append(f'KERNEL("{device_id}", "{cls}", {cs:.4f}, {bs:.4f})')
                for cls, (_, _, wave_us) in sorted(model.fitted.items()):
                    if wave_us > 0:
                        out.append(f'WAVE("{device_id}", "{cls}", {wave_us:.2f})')
                written = True
                continue
            if line.startswith((f'KERNEL("{device_id}"', f'WAVE("{device_id}"')):
                continue
            out.append(line)
        assert written, f"device {device_id} not in {table_path}"
        open(table_path, "w").write("\n".join(out) + "\n")
        print(f"rewrote {table_path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("logs", nargs="+")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--device", required=True)
    c.add_argument("--backward", action="store_true",
                   help="the logs are of training steps (recorded in each run)")
    f = sub.add_parser("fit")
    f.add_argument("profiles", nargs="+")
    f.add_argument("--costs", required=True, nargs="+",
                   help="directories of NAME.json cost reports (the first that has one)")
    f.add_argument("--one-scale", action="store_true",
                   help="one scale per tensor-core class (compute and bytes alike)")
    f.add_argument("--leave-one-out", action="store_true",
                   help="also predict each preset from a fit to the others")
    f.add_argument("--table", default=os.path.join(os.path.dirname(__file__), "..", "lib",
                                                   "Analysis", "CostModel", "DeviceTables.def"))
    f.add_argument("--write", action="store_true")
    args = parser.parse_args()
    collect(args) if args.command == "collect" else fit(args)


if __name__ == "__main__":
    main()
