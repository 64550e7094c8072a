"""MoE-MLIR from Python: compile MoE layers ahead of time and run them.

    import moe_mlir, numpy as np
    art = moe_mlir.compile(moe_mlir.LayerSpec(tokens=16, hidden=32, ffn=24,
                                              experts=4, top_k=2))
    y, indices = art(x, w_gate, w1, w2)

`moe_mlir.torch` has the PyTorch layer (imported on demand: it needs torch).
"""

from ._errors import CompileError, RuntimeError_ as RuntimeError  # noqa: A001
from .spec import LayerSpec
from .compiler import Program, compile
from .artifact import Artifact, Function, set_poison_allocations

__all__ = [
    "Artifact",
    "CompileError",
    "Function",
    "LayerSpec",
    "Program",
    "RuntimeError",
    "compile",
    "set_poison_allocations",
]
