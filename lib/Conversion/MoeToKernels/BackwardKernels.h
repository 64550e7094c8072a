//===- BackwardKernels.h - moe training ops to moek kernels -----*- C++ -*-===//
//
// The lowering of the ops moe-generate-backward makes. The backward has one
// lowering, zero-buffer by construction: every grouped row reads its token
// and its output gradient through the row-owners map, and no [T*k, H] buffer
// exists (fused or not, moe-lower-to-kernels lowers these the same way).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_BACKWARDKERNELS_H
#define MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_BACKWARDKERNELS_H

#include "lib/Conversion/MoeToKernels/KernelBuilding.h"

namespace mlir::moe {

/// The f32 accumulators behind narrowed gradients: the router's backward
/// continues the experts' dx from its f32 accumulator, so a bf16 dx is
/// rounded once, not twice.
using WideGradients = llvm::DenseMap<Value, Value>;

/// dx, dw1, dw2 and the gate-weight gradients of a dispatch -> experts ->
/// combine chain: per chunk of `expertsPerChunk` experts, the gate/up
/// projection recomputed, the GLU backward (with <dy . w2^T, a> for the gate
/// weights), two varlen-K weight gradients and the input gradient scattered
/// into token order. With `narrowGemmOperands` the row buffer a GEMM reads
/// as an operand (dh) has the layer's element type, as tensor cores need.
LogicalResult lowerExpertsBackward(ExpertsBackwardOp op, RoutingPlans &plans,
                                   RewriterBase &rewriter,
                                   int64_t expertsPerChunk,
                                   bool narrowGemmOperands,
                                   WideGradients &wide);

/// The router's backward (moek.route_backward) into f32 accumulators; with
/// `scratchBuffers` it gets an f32 [T, E] scratch buffer for the GPU's
/// scores, and for a bf16/f16 layer whose products fit the tensor cores a
/// [T, E] buffer of the layer's type for the rounded score gradients.
LogicalResult lowerGateBackward(GateBackwardOp op, RoutingPlans &plans,
                                RewriterBase &rewriter,
                                const WideGradients &wide, bool scratchBuffers);

LogicalResult lowerExpertLoads(ExpertLoadsOp op, RoutingPlans &plans,
                               RewriterBase &rewriter);

/// The saved pre-activation on its own: one gathered grouped matmul over
/// all experts into a [T*k, 2F] buffer of h's type (moe-zero-buffer-fusion
/// instead has the chain's GLU GEMM store it, see allocGateUp).
LogicalResult lowerExpertGateUp(ExpertGateUpOp op, RoutingPlans &plans,
                                RewriterBase &rewriter);

/// A fresh buffer for the saved pre-activation `op` ([T*k, 2F], of its
/// result's element type: f32, or the layer's storage type where the
/// backward reads h in that type), for the GEMM that computes h to fill.
Value allocGateUp(ImplicitLocOpBuilder &b, ExpertGateUpOp op,
                  const RoutingPlan &plan, Value x);

/// Forwards the residuals to their users and names their buffers
/// `residuals.*` for the memory plan.
void lowerSaveForBackward(SaveForBackwardOp op, RewriterBase &rewriter);

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_BACKWARDKERNELS_H
