"""An independent NumPy reference of the block's attention half (ARCHITECTURE.md,
"The block"): h = x + Attn(RMSNorm(x; g1)), causal grouped-query attention with
its projections, in float64, on the arguments moe-run dumped. Compares with
moe-run's result and exits 1 beyond the tolerance.

Usage: block_reference.py DIR HEADS KV_HEADS TOLERANCE"""
import sys

import numpy as np

directory, heads, kv_heads, tolerance = (sys.argv[1], int(sys.argv[2]),
                                         int(sys.argv[3]), float(sys.argv[4]))


def load(name):
    return np.load(f"{directory}/{name}.npy").astype(np.float64)


x, g1, wq, wk, wv, wo = (load(f"arg{i}") for i in range(6))
result = load("result0")
batch, length, hidden = x.shape
head_dim = wq.shape[1] // heads

n = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6) * g1
q = (n @ wq).reshape(batch, length, heads, head_dim)
k = (n @ wk).reshape(batch, length, kv_heads, head_dim)
v = (n @ wv).reshape(batch, length, kv_heads, head_dim)
out = np.zeros((batch, length, heads, head_dim))
causal = np.tril(np.ones((length, length), dtype=bool))
for b in range(batch):
    for h in range(heads):
        g = h * kv_heads // heads
        scores = q[b, :, h] @ k[b, :, g].T / np.sqrt(head_dim)
        scores = np.where(causal, scores, -np.inf)
        p = np.exp(scores - scores.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        out[b, :, h] = p @ v[b, :, g]
expected = x + out.reshape(batch, length, heads * head_dim) @ wo

error = np.abs(result - expected).max() / max(np.abs(expected).max(), 1e-30)
print(f"block attention: max relative error {error:.3g} (tolerance {tolerance})")
sys.exit(0 if error <= tolerance else 1)
