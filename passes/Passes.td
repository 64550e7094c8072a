//===- Passes.td - MoE-MLIR passes -------------------------*- tablegen -*-===//

#ifndef MOE_PASSES
#define MOE_PASSES

include "mlir/Pass/PassBase.td"

def MoeLowerToLoopsPass : Pass<"moe-lower-to-loops", "ModuleOp"> {
  let summary = "Lower moe ops to loops over buffers (the CPU reference lowering)";
  let description = [{
    Rewrites `moe.gate`, `moe.dispatch`, `moe.experts` and `moe.combine` into
    `scf.for` loops over memrefs with `arith`/`math` arithmetic, wrapped back
    into tensors with `bufferization.to_tensor`, ready for one-shot
    bufferization. Accumulation is in f32 whatever the storage type. Only
    the selected experts of each token are computed (T*k expert rows).

    The routing plan becomes `positions[T,k]` (the dispatched row of each
    assignment, -1 when capacity dropped it) and `offsets[E+1]` (the first
    row of each expert). A `!moe.routing` value must come from a `moe.gate`
    in the same function and be used only by dispatch, experts and combine;
    anything else is reported as an error.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
  ];
}

#endif // MOE_PASSES
