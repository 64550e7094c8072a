#!/usr/bin/env python3
"""Checks the memory plan of a training step (moe-compile --backward --report-memory).

    check_training_plan.py PLAN.json T K H ELEMENT_BYTES

Fails unless the saved residuals are their own category (the router weights and the routing
plan, nothing else) and no planned buffer is as large as a [T*k, H] buffer of tokens or expert
outputs; prints the peak and the bytes per category.
"""
import json
import sys


def main(argv):
    if len(argv) != 6:
        sys.exit(__doc__)
    plan = json.load(open(argv[1]))
    tokens, top_k, hidden, element = (int(v) for v in argv[2:])
    rows_bytes = tokens * top_k * hidden * element
    residuals = sorted(b["name"] for b in plan["buffers"] if b["category"] == "residuals")
    if residuals != ["residuals.offsets", "residuals.ranks", "residuals.weights"]:
        sys.exit("unexpected residuals: %s" % residuals)
    for category in ("dispatch", "expert_outputs"):
        if category in plan["by_category"]:
            sys.exit("a %s buffer exists in the training step" % category)
    for buffer in plan["buffers"]:
        if buffer["bytes"] >= rows_bytes:
            sys.exit("%s has %d bytes, as many as a [T*k, H] buffer (%d)"
                     % (buffer["name"], buffer["bytes"], rows_bytes))
    print("function %s peak %d" % (plan["function"], plan["peak_intermediate_bytes"]))
    for category, size in sorted(plan["by_category"].items()):
        print("category %s %d" % (category, size))
    print("residuals %s" % " ".join(residuals))
    print("no [T*k, H] buffer")


if __name__ == "__main__":
    main(sys.argv)
