"""The CUDA memory plans of one block untiled and over N tiles: attention's
buffers are q, k, v, the heads' outputs and the output, nothing else (no
[B, heads, L, L] scores, no row statistics: flash attention), and each of
them over N tiles is 1/N of its untiled size; tiled, the tile reads its
rows from the batch's and writes its output into the batch's in place
(moe-fold-slice-copies), so neither attention.rows nor attention.out takes
bytes of its own. Every buffer of both plans is named (none is "other.*").

Usage: cuda_attention_plan.py UNTILED.json TILED.json N
"""
import json
import sys


def attention_buffers(path, tiled):
    plan = json.load(open(path))
    unnamed = [b["name"] for b in plan["buffers"] if b["name"].startswith("other.")]
    if unnamed:
        sys.exit(f"{path}: buffers without a name: {unnamed}")
    buffers = {b["name"]: b["bytes"] for b in plan["buffers"]
               if b["name"].startswith("attention.")}
    if tiled:
        copies = sorted({"attention.rows", "attention.out"} & set(buffers))
        if copies:
            sys.exit(f"{path}: the tile's slices have buffers of their own: {copies}")
    extra = sorted(set(buffers) - set(EXPECTED))
    if extra:
        sys.exit(f"{path}: attention buffers beyond q, k, v, heads, out: {extra}")
    return buffers


EXPECTED = ["attention.q", "attention.k", "attention.v", "attention.heads",
            "attention.out"]
untiled = attention_buffers(sys.argv[1], tiled=False)
tiled = attention_buffers(sys.argv[2], tiled=True)
tiles = int(sys.argv[3])
for name in EXPECTED:
    if name == "attention.out":
        if name not in untiled:
            sys.exit(f"{name} missing from the untiled plan: {sorted(untiled)}")
        continue
    if name not in untiled or name not in tiled:
        sys.exit(f"{name} missing from a plan: {sorted(untiled)}, {sorted(tiled)}")
    if untiled[name] != tiles * tiled[name]:
        sys.exit(f"{name}: {tiled[name]} bytes over {tiles} tiles, "
                 f"{untiled[name]} untiled")
share = "a quarter of the untiled ones" if tiles == 4 else f"1/{tiles}"
print(f"attention buffers over {tiles} tiles: {share}; no scores; "
      "no copies of the tile's slices")
