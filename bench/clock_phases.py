"""The GPU's SM clock and power during each timed phase, from nvidia-smi's samples.
usage: clock_phases.py SAMPLES LOG
SAMPLES: nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_event_reasons.active
         --format=csv,noheader,nounits -lms 50 (local time, as the phases' clock)
LOG:     lines "NAME START END" (Unix seconds), JSON lines with start and end (SonicMoE's from
         bench/sonic_forward.py, cuBLAS's from bench/dense_ceiling.py) or sonic_forward.py's
         "moe-mlir NAME: ... [START END]" lines.
Only samples with the GPU busy (over BUSY_WATTS, default 300 W) count: a phase's span also holds
host work (moe-run makes its random inputs before it times anything)."""
import datetime, json, os, re, statistics, sys

busy_watts = float(os.environ.get("BUSY_WATTS", "300"))
samples = []
for line in open(sys.argv[1]):
    parts = [p.strip() for p in line.split(",")]
    try:
        t = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
        samples.append((t, float(parts[1]), float(parts[2]), int(parts[3], 16)))
    except (ValueError, IndexError):
        continue

phases = []
for line in open(sys.argv[2]):
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        if "start" in r:
            what = f"cublas {r['shape']}" if "shape" in r else f"{r.get('impl')} {r.get('cfg')}"
            phases.append((f"{what} {r.get('ms')} ms", r["start"], r["end"]))
    elif (m := re.match(r"moe-mlir (\S+): .*median ([0-9.]+) ms.*\[([0-9.]+) ([0-9.]+)\]", line)):
        phases.append((f"moe-mlir {m[1]} {m[2]} ms", float(m[3]), float(m[4])))
    elif len(parts := line.split()) == 3:
        try:
            phases.append((parts[0], float(parts[1]), float(parts[2])))
        except ValueError:
            pass

print(f"== clocks while busy (power over {busy_watts:.0f} W): samples, SM MHz median / min, power W median, "
      "clock-event reasons (0x4: the software power cap)")
for name, start, end in phases:
    inside = [s for s in samples if start <= s[0] <= end and s[2] > busy_watts]
    if not inside:
        print(f"{name}: no busy samples")
        continue
    reasons = sorted({hex(s[3]) for s in inside})
    print(f"{name}: {len(inside)} samples, SM {statistics.median(s[1] for s in inside):.0f} / "
          f"{min(s[1] for s in inside):.0f} MHz, {statistics.median(s[2] for s in inside):.0f} W, {reasons}")
