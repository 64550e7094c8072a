"""Reads a moe-run --trace file and prints what a test can check: that it is
valid JSON in Chrome's trace format, which ranks (processes) it has, that
each has a compute (tid 0) and a communication (tid 1) lane, and that every
rank has all-to-all spans on its communication lane."""
import json
import sys

path, ranks = sys.argv[1], int(sys.argv[2])
events = json.load(open(path))["traceEvents"]
pids = sorted({e["pid"] for e in events})
lanes = {}
for e in events:
    if e.get("name") == "thread_name":
        lanes.setdefault(e["pid"], {})[e["tid"]] = e["args"]["name"]
spans = [e for e in events if e["ph"] == "X"]
assert pids == list(range(ranks)), pids
assert all(lanes[p] == {0: "compute", 1: "communication"} for p in pids), lanes
for p in pids:
    mine = [e for e in spans if e["pid"] == p and e["tid"] == 1 and e["name"] == "all_to_all"]
    assert mine and all(e["dur"] >= 0 for e in mine), p
    assert any(e["tid"] == 0 for e in spans if e["pid"] == p), p
print("ranks %d, lanes compute communication, all_to_all spans on every rank" % len(pids))
