"""Prints whether fused/unfused planned peaks are within a bound; exits 1 if not.

No [T*k, H] buffer may appear in the fused plan either.
usage: compare_peaks.py FUSED.json UNFUSED.json BOUND
"""
import json
import sys

fused, unfused = (json.load(open(p)) for p in sys.argv[1:3])
bound = float(sys.argv[3])
ratio = fused["peak_intermediate_bytes"] / unfused["peak_intermediate_bytes"]
categories = {b["category"] for b in fused["buffers"]}
if categories & {"dispatch", "expert_outputs"}:
    print(f"fused plan still has {sorted(categories)}")
    sys.exit(1)
print(f"ratio {ratio:.4f}")
if ratio > bound:
    print(f"fused/unfused {ratio:.4f} exceeds {bound}")
    sys.exit(1)
print(f"fused/unfused within {bound}")
