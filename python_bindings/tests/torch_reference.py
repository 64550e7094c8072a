"""A naive MoE layer in plain PyTorch (float64, autograd for the backward),
written from ARCHITECTURE.md and sharing nothing with the compiler."""

import math

import torch


def moe_layer(x, w_gate, w1, w2, bias=None, *, top_k, router="softmax",
              normalize=True, scaling=1.0, capacity=0.0,
              activation="silu_glu", aux_loss=0.0):
    """Returns (y, indices, loads, aux); differentiable in x and weights."""
    tokens = x.shape[0]
    experts = w_gate.shape[1]
    ffn = w2.shape[1]
    s = x @ w_gate
    p = torch.softmax(s, dim=1) if router == "softmax" else torch.sigmoid(s)
    score = p.detach() + (0 if bias is None else bias.to(p.dtype))
    # Largest first, ties to the lower index; the selection has no gradient.
    indices = torch.sort(-score, dim=1, stable=True).indices[:, :top_k]
    weights = p.gather(1, indices)
    if normalize:
        weights = weights / weights.sum(dim=1, keepdim=True)
    weights = weights * scaling
    cap = tokens if capacity == 0 else min(
        tokens, math.ceil(capacity * tokens * top_k / experts))
    kept = torch.zeros(tokens, top_k, dtype=torch.bool)
    loads = [0] * experts
    for t in range(tokens):
        for j in range(top_k):
            e = int(indices[t, j])
            if loads[e] < cap:
                loads[e] += 1
                kept[t, j] = True
    y = torch.zeros_like(x)
    for e in range(experts):
        t, j = torch.nonzero((indices == e) & kept, as_tuple=True)
        if t.numel() == 0:
            continue
        h = x[t] @ w1[e]
        gate, up = h[:, :ffn], h[:, ffn:]
        if activation == "silu_glu":
            a = torch.nn.functional.silu(gate) * up
        else:
            a = torch.nn.functional.gelu(gate, approximate="tanh") * up
        y = y.index_add(0, t, weights[t, j, None] * (a @ w2[e]))
    loads = torch.tensor(loads, dtype=torch.int32)
    f = loads.to(x.dtype) / (tokens * top_k)
    aux = aux_loss * experts * (f * p.mean(dim=0)).sum()
    return y, indices.to(torch.int32), loads, aux


def relative_error(out, ref):
    out = out.detach().double()
    ref = ref.detach().double()
    return float((out - ref).norm() / ref.norm())
