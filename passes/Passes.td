//===- Passes.td - MoE-MLIR passes -------------------------*- tablegen -*-===//

#ifndef MOE_PASSES
#define MOE_PASSES

include "mlir/Pass/PassBase.td"

#endif // MOE_PASSES
