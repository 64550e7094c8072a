"""The layers the GPU tests (test_torch_cuda.py) run, in one place, so that
their artifacts can be compiled ahead of time where the compiler is and
carried to a GPU machine that has only the runtime:

    python3 cuda_cases.py DIR [TARGET]     # default target cuda:sm_90a

writes the forward and training artifacts of every case, for TARGET and for
the CPU (the tests compare the two), under the names moe_mlir.torch looks
for in MOE_MLIR_ARTIFACT_DIR.
"""

import sys

import torch

# name: (MoELayer options, token count). Odd token counts, top-k 3, both
# routers, a capacity that drops, the selection bias, the aux loss, gelu,
# f32, and qwen3_30b_a3b's H, F, E and k at a few hundred tokens.
CASES = {
    "bf16": (dict(hidden=256, ffn=128, experts=8, top_k=2,
                  dtype=torch.bfloat16), 200),
    "bf16-sigmoid-capacity-bias": (dict(hidden=128, ffn=64, experts=16,
                                        top_k=4, router="sigmoid",
                                        capacity=1.0, selection_bias=True,
                                        dtype=torch.bfloat16), 131),
    "bf16-gelu-k3-aux": (dict(hidden=128, ffn=192, experts=6, top_k=3,
                              activation="gelu_glu", aux_loss=0.01,
                              dtype=torch.bfloat16), 97),
    "f32": (dict(hidden=64, ffn=32, experts=6, top_k=2), 77),
    "bf16-qwen3-shape": (dict(hidden=2048, ffn=768, experts=128, top_k=8,
                              dtype=torch.bfloat16), 300),
}


def precompile(directory: str, target: str = "cuda:sm_90a") -> list:
    from moe_mlir.torch import MoELayer, precompile as compile_layer
    paths = []
    for name, (options, tokens) in CASES.items():
        layer = MoELayer(**options)
        for each in (target, "cpu"):
            paths += compile_layer(layer, [tokens], each, directory)
            print(f"compiled {name} for {each}", flush=True)
    return paths


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} DIR [TARGET]")
    precompile(*sys.argv[1:])
