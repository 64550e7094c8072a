"""A naive MoE layer in NumPy, written from ARCHITECTURE.md ("Semantics"),
sharing nothing with the compiler: the tests' independent reference."""

import math

import numpy as np


def silu(v):
    return v / (1.0 + np.exp(-v))


def gelu_tanh(v):
    return 0.5 * v * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) *
                                    (v + 0.044715 * v ** 3)))


def moe_layer(x, w_gate, w1, w2, bias=None, *, top_k, router="softmax",
              normalize=True, scaling=1.0, capacity=0.0,
              activation="silu_glu"):
    """Returns (y, indices, loads) in float64 from float64 inputs."""
    x, w_gate, w1, w2 = (np.asarray(a, np.float64) for a in (x, w_gate, w1, w2))
    tokens, _ = x.shape
    experts = w_gate.shape[1]
    ffn = w2.shape[1]
    s = x @ w_gate
    if router == "softmax":
        e = np.exp(s - s.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
    else:
        p = 1.0 / (1.0 + np.exp(-s))
    score = p + (0.0 if bias is None else np.asarray(bias, np.float64))
    # Largest first, ties to the lower expert index (a stable sort).
    indices = np.argsort(-score, axis=1, kind="stable")[:, :top_k]
    weights = np.take_along_axis(p, indices, axis=1)
    if normalize:
        weights = weights / weights.sum(axis=1, keepdims=True)
    weights = weights * scaling
    cap = tokens if capacity == 0 else min(
        tokens, math.ceil(capacity * tokens * top_k / experts))
    act = silu if activation == "silu_glu" else gelu_tanh
    y = np.zeros_like(x)
    loads = np.zeros(experts, np.int64)
    for t in range(tokens):
        for j in range(top_k):
            e = indices[t, j]
            if loads[e] >= cap:
                continue  # dropped: contributes zero
            loads[e] += 1
            h = x[t] @ w1[e]
            a = act(h[:ffn]) * h[ffn:]
            y[t] += weights[t, j] * (a @ w2[e])
    return y, indices.astype(np.int32), loads


def relative_error(out, ref):
    out = np.asarray(out, np.float64)
    ref = np.asarray(ref, np.float64)
    return float(np.linalg.norm(out - ref) / np.linalg.norm(ref))


def random_layer(rng, tokens, hidden, ffn, experts, bias=False):
    """Inputs scaled by fan-in so that y is of order 1 (as moe-run's)."""
    x = rng.standard_normal((tokens, hidden)).astype(np.float32)
    w_gate = (rng.standard_normal((hidden, experts)) /
              math.sqrt(hidden)).astype(np.float32)
    w1 = (rng.standard_normal((experts, hidden, 2 * ffn)) /
          math.sqrt(hidden)).astype(np.float32)
    w2 = (rng.standard_normal((experts, ffn, hidden)) /
          math.sqrt(ffn)).astype(np.float32)
    arrays = [x, w_gate, w1, w2]
    if bias:
        arrays.append((0.1 * rng.standard_normal(experts)).astype(np.float32))
    return arrays
