"""Drops moe_mlir.torch.MoELayer into a Hugging Face-style model in place of
its MoE block, and checks that the model computes the same function.

The model is written here (no download, no transformers needed) in the
shape of Hugging Face's Mixtral: a decoder layer with RMSNorm, causal
self-attention and a `block_sparse_moe` module that returns
(hidden_states, router_logits), whose experts are `w1` (gate), `w3` (up)
and `w2` (down) linears and whose router is `gate`. `MoeMlirSparseMoeBlock`
has the same interface, takes the block's weights and runs them as one
compiled layer; `replace_moe_blocks` swaps every block of a model.

    python examples/hf_block.py
"""

import torch
import torch.nn.functional as F

from moe_mlir.torch import MoELayer


class Config:
    hidden_size = 64
    intermediate_size = 48
    num_local_experts = 8
    num_experts_per_tok = 2
    num_attention_heads = 4
    num_hidden_layers = 2
    vocab_size = 100
    rms_norm_eps = 1e-6


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * \
            self.weight


class ExpertMLP(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.w1 = torch.nn.Linear(config.hidden_size,
                                  config.intermediate_size, bias=False)
        self.w3 = torch.nn.Linear(config.hidden_size,
                                  config.intermediate_size, bias=False)
        self.w2 = torch.nn.Linear(config.intermediate_size,
                                  config.hidden_size, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class SparseMoeBlock(torch.nn.Module):
    """Mixtral's MoE block as Hugging Face writes it: softmax router, top-k,
    weights renormalized, a loop over experts."""

    def __init__(self, config):
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.gate = torch.nn.Linear(config.hidden_size,
                                    config.num_local_experts, bias=False)
        self.experts = torch.nn.ModuleList(
            ExpertMLP(config) for _ in range(config.num_local_experts))

    def forward(self, hidden_states):
        batch, length, dim = hidden_states.shape
        x = hidden_states.view(-1, dim)
        router_logits = self.gate(x)
        weights = F.softmax(router_logits, dim=1, dtype=torch.float)
        weights, selected = torch.topk(weights, self.top_k, dim=-1)
        weights = (weights / weights.sum(dim=-1, keepdim=True)).to(x.dtype)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            token, slot = torch.where(selected == e)
            if token.numel():
                out.index_add_(0, token,
                               expert(x[token]) * weights[token, slot, None])
        return out.view(batch, length, dim), router_logits


class MoeMlirSparseMoeBlock(torch.nn.Module):
    """SparseMoeBlock's interface over one compiled MoE-MLIR layer."""

    def __init__(self, config):
        super().__init__()
        self.moe = MoELayer(hidden=config.hidden_size,
                            ffn=config.intermediate_size,
                            experts=config.num_local_experts,
                            top_k=config.num_experts_per_tok)

    @classmethod
    def from_block(cls, config, block):
        new = cls(config)
        with torch.no_grad():
            # nn.Linear stores [out, in]: the layer wants [in, out].
            new.moe.w_gate.copy_(block.gate.weight.t())
            for e, expert in enumerate(block.experts):
                new.moe.w1[e].copy_(torch.cat([expert.w1.weight.t(),
                                               expert.w3.weight.t()], dim=1))
                new.moe.w2[e].copy_(expert.w2.weight.t())
        return new

    def forward(self, hidden_states):
        y = self.moe(hidden_states)
        # The router logits, for callers that add their own balancing loss.
        logits = hidden_states.reshape(-1, hidden_states.shape[-1]) @ \
            self.moe.w_gate
        return y, logits


class DecoderLayer(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.qkv = torch.nn.Linear(config.hidden_size, 3 * config.hidden_size,
                                   bias=False)
        self.o_proj = torch.nn.Linear(config.hidden_size, config.hidden_size,
                                      bias=False)
        self.post_attention_layernorm = RMSNorm(config.hidden_size,
                                                config.rms_norm_eps)
        self.block_sparse_moe = SparseMoeBlock(config)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(self.input_layernorm(x)).split(d, dim=-1)
        q, k, v = (t.view(b, n, self.heads, -1).transpose(1, 2)
                   for t in (q, k, v))
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o_proj(attn.transpose(1, 2).reshape(b, n, d))
        moe, _ = self.block_sparse_moe(self.post_attention_layernorm(x))
        return x + moe


class TinyMixtral(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(config.vocab_size,
                                               config.hidden_size)
        self.layers = torch.nn.ModuleList(
            DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = torch.nn.Linear(config.hidden_size, config.vocab_size,
                                       bias=False)

    def forward(self, input_ids):
        x = self.embed_tokens(input_ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


def replace_moe_blocks(model, config):
    """Swaps every SparseMoeBlock of `model` for the compiled layer."""
    for layer in model.layers:
        layer.block_sparse_moe = MoeMlirSparseMoeBlock.from_block(
            config, layer.block_sparse_moe)
    return model


def main():
    torch.manual_seed(0)
    config = Config()
    model = TinyMixtral(config)
    input_ids = torch.randint(0, config.vocab_size, (2, 16))
    with torch.no_grad():
        expected = model(input_ids)
    replace_moe_blocks(model, config)
    with torch.no_grad():
        logits = model(input_ids)
    error = float((logits - expected).norm() / expected.norm())
    print(f"logits of the model with MoE-MLIR blocks: relative difference "
          f"{error:.2e} from the original")
    if not error < 1e-4:
        raise SystemExit("the compiled blocks changed the model's output")

    # And it trains: one optimizer step on next-token prediction.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    targets = torch.roll(input_ids, -1, dims=1)
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(model(input_ids).flatten(0, 1),
                               targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    print("next-token loss over 5 steps: " +
          " ".join(f"{v:.3f}" for v in losses))
    if not losses[-1] < losses[0]:
        raise SystemExit("the loss did not go down")


if __name__ == "__main__":
    main()
