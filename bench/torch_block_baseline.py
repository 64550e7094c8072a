"""The transformer block in PyTorch on one GPU, the peer of moe-run's block
(ARCHITECTURE.md, "The block"): h = x + Attn(RMSNorm(x; g1)),
y = h + MoE(RMSNorm(h; g2)), bf16, forward only.

Attention: the projections as GEMMs, torch's scaled_dot_product_attention
(causal; the flash backend when it takes the shapes, grouped-query heads by
enable_gqa or repeated k/v heads otherwise); RMSNorm in f32 as the block's
semantics say; the MoE is the team's grouped baseline
(../shared/bench/torch_baselines.py: sort by expert, torch._grouped_mm),
imported from this file's folder where block_device.sh copies it.

Run: python3 torch_block_baseline.py BATCH [BATCH ...]   (qwen3_block's
shapes; OUT=dir for torch_block.json). Prints one JSON line a batch: ms per
forward (median of 10 after 3 warm-ups), microseconds per token, the
attention backend, and torch.cuda.max_memory_allocated over the step above
what the weights and x hold.
"""
import json, os, sys
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_baselines import moe_grouped  # noqa: E402  (the team's MoE)

dev, dt = "cuda", torch.bfloat16
# qwen3_block: hidden 2048, 32 heads, 4 kv heads, head size 128, seq 4096,
# the qwen3_30b_a3b MoE (ffn 768, 128 experts, top 8).
H, NH, NKV, DH, L = 2048, 32, 4, 128, 4096
FFN, E, K = 768, 128, 8


def rms_norm(v, g, eps=1e-6):
    f = v.float()
    return (f * torch.rsqrt(f.pow(2).mean(-1, keepdim=True) + eps)).to(v.dtype) * g


def attention(n, wq, wk, wv, wo, backend):
    B, L_, _ = n.shape
    q = (n @ wq).view(B, L_, NH, DH).transpose(1, 2)
    k = (n @ wk).view(B, L_, NKV, DH).transpose(1, 2)
    v = (n @ wv).view(B, L_, NKV, DH).transpose(1, 2)
    if backend == "flash+gqa":
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    else:  # repeated kv heads: every backend takes it
        r = NH // NKV
        o = F.scaled_dot_product_attention(q, k.repeat_interleave(r, 1),
                                           v.repeat_interleave(r, 1), is_causal=True)
    return o.transpose(1, 2).reshape(B, L_, NH * DH) @ wo


def block(x, w, backend):
    n = rms_norm(x, w["g1"])
    h = x + attention(n, w["wq"], w["wk"], w["wv"], w["wo"], backend)
    m = rms_norm(h, w["g2"]).view(-1, H)
    return h + moe_grouped(m, w["wr"], w["w1"], w["w2"], K).view_as(h)


def weights(seed=0):
    g = torch.Generator(device=dev).manual_seed(seed)
    r = lambda *s, scale: torch.randn(*s, device=dev, dtype=dt, generator=g) * scale
    return dict(g1=r(H, scale=1.0), g2=r(H, scale=1.0), wq=r(H, NH * DH, scale=H ** -0.5),
                wk=r(H, NKV * DH, scale=H ** -0.5), wv=r(H, NKV * DH, scale=H ** -0.5),
                wo=r(NH * DH, H, scale=(NH * DH) ** -0.5), wr=r(H, E, scale=H ** -0.5),
                w1=r(E, H, 2 * FFN, scale=H ** -0.5), w2=r(E, FFN, H, scale=FFN ** -0.5))


def pick_backend(x, w):
    # The flash kernel with grouped-query heads where this torch has it.
    from torch.nn.attention import sdpa_kernel, SDPBackend
    try:
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            block(x[:1, :256], w, "flash+gqa")
        return "flash+gqa"
    except Exception as ex:  # older torch: no enable_gqa on flash
        print(json.dumps(dict(note="flash+gqa unavailable", why=str(ex)[:160])), flush=True)
        return "flash"


def bench(batch, w, iters=10, warm=3):
    from torch.nn.attention import sdpa_kernel, SDPBackend
    g = torch.Generator(device=dev).manual_seed(batch)
    x = torch.randn(batch, L, H, device=dev, dtype=dt, generator=g)
    backend = pick_backend(x, w)
    with torch.no_grad(), sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        for _ in range(warm):
            block(x, w, backend)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        times = []
        for _ in range(iters):
            s = torch.cuda.Event(enable_timing=True)
            e = torch.cuda.Event(enable_timing=True)
            s.record(); block(x, w, backend); e.record(); torch.cuda.synchronize()
            times.append(s.elapsed_time(e))
    peak = torch.cuda.max_memory_allocated() - base
    times.sort()
    ms = times[len(times) // 2]
    tokens = batch * L
    return dict(impl="torch_block", batch=batch, seq=L, ms=round(ms, 3),
                us_per_token=round(1000 * ms / tokens, 4), attention=backend,
                peak_above_inputs_gib=round(peak / 2**30, 3),
                max_memory_allocated_gib=round(torch.cuda.max_memory_allocated() / 2**30, 3),
                torch=torch.__version__)


def main():
    torch.backends.cuda.matmul.allow_tf32 = True
    w = weights()
    results = []
    for batch in [int(b) for b in sys.argv[1:]] or [1, 2, 4]:
        try:
            results.append(bench(batch, w))
        except Exception as ex:  # OOM etc.
            results.append(dict(impl="torch_block", batch=batch, error=str(ex)[:200]))
            torch.cuda.empty_cache()
        print(json.dumps(results[-1]), flush=True)
    with open(os.path.join(os.environ.get("OUT", "."), "torch_block.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
