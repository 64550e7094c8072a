//===- BackwardKernelsGPU.h - The backward kernels as GPU kernels -*- C++ -*-===//
//
// SIMT kernels for the training step, with the per-item bodies the CPU
// loops run (lib/Conversion/MoekToLoops/BackwardLoops.h): a warp per grouped
// row for the GLU backward, a thread per weight-gradient element for the
// varlen-K GEMMs that do not run on tensor cores; the router's backward as
// a thread per token from the scores to their gradients ds, then dx += ds .
// w_gate^T and dw_gate = x^T ds on tensor cores (bf16/f16) or SIMT kernels. The products
// with B transposed (dy . w2^T, dh . w1^T) are grouped matmuls.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_BACKWARDKERNELSGPU_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_BACKWARDKERNELSGPU_H

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

namespace mlir::moek {

/// Emits one GPU launch running `body(i)` for i in [0, count).
using LaunchPerItem =
    function_ref<void(Value count, function_ref<void(Value)> body)>;

void lowerExpertLoadsToGPU(ExpertLoadsOp op, moe::LoopBuilder &lb,
                           LaunchPerItem launch);
void lowerGroupedGluBackwardToGPU(GroupedGluBackwardOp op,
                                  moe::LoopBuilder &lb, LaunchPerItem launch);
/// The varlen-K weight gradient: the sm_90a wgmma kernel when
/// `warpgroupMma` (a persistent grid of `multiprocessors` CTAs, paired
/// where it can when `clusterSize` is 2), else the mma.sync kernel for
/// bf16/f16, else a thread per element.
void lowerGroupedWeightGradToGPU(GroupedWeightGradOp op, moe::LoopBuilder &lb,
                                 LaunchPerItem launch, bool warpgroupMma,
                                 int64_t multiprocessors, int64_t clusterSize);
/// `scores`: f32 [T, E] holding x . w_gate (the caller's GEMM). With the
/// op's `ds` (bf16/f16), a thread per token rounds its score gradients into
/// it and the products dx += ds . w_gate^T, dw_gate = x^T ds run on tensor
/// cores (`tile` for dx, dw_gate's reduction split to fill
/// `multiprocessors`); otherwise the gradients overwrite `scores` and the
/// products are SIMT kernels.
void lowerRouteBackwardToGPU(RouteBackwardOp op, moe::LoopBuilder &lb,
                             LaunchPerItem launch, Value scores,
                             const TensorCoreTile &tile,
                             int64_t multiprocessors);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_BACKWARDKERNELSGPU_H
