//===- BackwardKernelsGPU.h - The backward kernels as GPU kernels -*- C++ -*-===//
//
// SIMT kernels for the training step, one GPU thread per item, with the
// per-item bodies the CPU loops run (lib/Conversion/MoekToLoops/
// BackwardLoops.h): a grouped row for the GLU backward, a weight-gradient
// element for the varlen-K GEMMs, a (row, column) for the input gradient
// (f32 atomics into token order), a token for the router's backward (f32
// atomics into dw_gate and the aux loss).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_BACKWARDKERNELSGPU_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_BACKWARDKERNELSGPU_H

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

namespace mlir::moek {

/// Emits one GPU launch running `body(i)` for i in [0, count).
using LaunchPerItem =
    function_ref<void(Value count, function_ref<void(Value)> body)>;

void lowerExpertLoadsToGPU(ExpertLoadsOp op, moe::LoopBuilder &lb,
                           LaunchPerItem launch);
void lowerGroupedGluBackwardToGPU(GroupedGluBackwardOp op,
                                  moe::LoopBuilder &lb, LaunchPerItem launch);
void lowerGroupedWeightGradToGPU(GroupedWeightGradOp op, moe::LoopBuilder &lb,
                                 LaunchPerItem launch);
void lowerGroupedInputGradToGPU(GroupedInputGradOp op, moe::LoopBuilder &lb,
                                LaunchPerItem launch);
void lowerRouteBackwardToGPU(RouteBackwardOp op, moe::LoopBuilder &lb,
                             LaunchPerItem launch);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_BACKWARDKERNELSGPU_H
