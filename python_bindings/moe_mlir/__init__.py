"""MoE-MLIR from Python: compile MoE layers ahead of time and run them.

    import moe_mlir, numpy as np
    art = moe_mlir.compile(moe_mlir.LayerSpec(tokens=16, hidden=32, ffn=24,
                                              experts=4, top_k=2))
    y, indices = art(x, w_gate, w1, w2)

`moe_mlir.torch` has the PyTorch layer (imported on demand: it needs torch).
A runtime-only installation (no compiler module) loads artifacts compiled
elsewhere: `moe_mlir.load(path)`.
"""

from ._errors import (CompileError, RuntimeError_ as RuntimeError,  # noqa: A001
                      has_compiler)
from .spec import LayerSpec
from .compiler import Program, compile, compile_file
from .artifact import Artifact, Function, set_poison_allocations


def load(path: str) -> Artifact:
    """Loads an artifact moe-compile (or compile()) wrote, on this machine
    or another; needs the runtime module only."""
    return Artifact(path)


__all__ = [
    "Artifact",
    "CompileError",
    "Function",
    "LayerSpec",
    "Program",
    "RuntimeError",
    "compile",
    "compile_file",
    "has_compiler",
    "load",
    "set_poison_allocations",
]
