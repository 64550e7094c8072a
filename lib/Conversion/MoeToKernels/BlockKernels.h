//===- BlockKernels.h - The block's ops as kernels on buffers ---*- C++ -*-===//
//
// moe.rms_norm and moe.attention (ARCHITECTURE.md, "The block") as
// linalg.generic kernels on named buffers, so that the memory plan and
// --report-memory see attention's intermediates (q, k, v, the scores, the
// heads' outputs) and, under moe-batch-tile-attention, their size is the
// tile's. CPU only for now: the CUDA lowering has no attention kernel.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_BLOCKKERNELS_H
#define MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_BLOCKKERNELS_H

#include "dialects/moe/IR/MoeOps.h"

#include "mlir/IR/PatternMatch.h"

namespace mlir::moe {

/// x / sqrt(mean(x^2) + eps) * g over the last dimension, in f32.
LogicalResult lowerRmsNorm(RmsNormOp op, RewriterBase &rewriter);

/// Causal grouped-query attention with its projections: q, k, v (f32), the
/// masked scores and their softmax (f32 [B, heads, L, L]), the heads'
/// outputs, then the output projection.
LogicalResult lowerAttention(AttentionOp op, RewriterBase &rewriter);

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_BLOCKKERNELS_H
