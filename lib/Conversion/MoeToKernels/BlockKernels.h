//===- BlockKernels.h - The block's ops as kernels on buffers ---*- C++ -*-===//
//
// moe.rms_norm and moe.attention (ARCHITECTURE.md, "The block") as
// linalg.generic kernels on named buffers, so that the memory plan and
// --report-memory see attention's intermediates (q, k, v, the scores, the
// heads' outputs) and, under moe-batch-tile-attention, their size is the
// tile's. The CUDA target lowers the same ops to moek kernels instead
// (moek.rms_norm, moek.matmul, moek.flash_attention): its attention never
// materializes the [L, L] scores.
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

/// RMSNorm as one moek.rms_norm over the rows of x ([T, H], or [B, L, H]
/// viewed as [B*L, H]): the GPU's kernel of a warp per row.
LogicalResult lowerRmsNormToKernels(RmsNormOp op, RewriterBase &rewriter);

/// Attention as moek kernels for the GPU: the projections q, k, v ([B, L,
/// width] in the storage type) as moek.matmul, the core as moek.flash_attention into the
/// heads' outputs in the storage type, then the output projection
/// (moek.matmul). Its buffers are O(B L H): no scores.
LogicalResult lowerAttentionToKernels(AttentionOp op, RewriterBase &rewriter);

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_CONVERSION_MOETOKERNELS_BLOCKKERNELS_H
