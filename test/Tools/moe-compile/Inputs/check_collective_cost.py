"""Checks the collectives of a --report-cost JSON of a per-rank program over
RANKS ranks: each all-to-all sends (R-1)/R of its rows' bytes, the hidden
part of each is within its time, the totals add up (kernels + communication
not hidden + the host's waits + synchronization), and MIN_SHARE..MAX_SHARE of the communication
is hidden. Usage: check_collective_cost.py REPORT RANKS ROW_BYTES MIN MAX"""
import json
import sys

report, ranks, row_bytes = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
low, high = float(sys.argv[4]), float(sys.argv[5])
f = next(iter(json.load(open(report))["functions"].values()))
collectives = f["collectives"]
assert collectives, "no collectives in the report"
rows = f["assumed_dynamic_extent"]
for c in collectives:
    assert 0 <= c["hidden_ms"] <= c["predicted_ms"] + 1e-12, c
    if c["name"] == "moek_all_to_all":
        expected = rows * row_bytes * (ranks - 1) / ranks
        assert abs(c["bytes"] - expected) <= 1e-6 * expected, (c, expected)
comm = sum(c["predicted_ms"] for c in collectives)
hidden = sum(c["hidden_ms"] for c in collectives)
assert abs(comm - f["communication_ms"]) < 1e-9 and abs(hidden - f["hidden_ms"]) < 1e-9
total = f["kernel_ms"] + comm - hidden + f["all_to_all_overhead_ms"] + f["sync_ms"]
assert abs(total - f["total_ms"]) < 1e-9, (total, f["total_ms"])
share = hidden / comm
assert low <= share <= high, f"hidden share {share:.3f} not in [{low}, {high}]"
print(f"collectives OK: {len(collectives)}, hidden share {share:.3f}")
