//===- BlockKernelsGPU.h - The block's kernels on CUDA ----------*- C++ -*-===//
//
// The CUDA lowerings of the block's moek kernels, one a file: moek.matmul
// (MatmulGPU.cpp), moek.rms_norm (RmsNormGPU.cpp) and moek.flash_attention
// (FlashAttentionGPU.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_BLOCKKERNELSGPU_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_BLOCKKERNELSGPU_H

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

namespace mlir::moek {

/// c = a . b: the tensor-core kernel of the grouped matmul with one group
/// (as the router's scores) where it applies (bf16/f16, K and N multiples
/// of 8), else a thread per output element.
void lowerMatmulToGPU(MatmulOp op, moe::LoopBuilder &lb,
                      const TensorCoreTile &tile);

/// A warp per row: the sum of squares in f32 across the lanes (a butterfly
/// of shuffles), then each lane scales its columns.
void lowerRmsNormToGPU(RmsNormOp op, moe::LoopBuilder &lb);

/// The largest head size the flash-attention kernel supports: each lane of
/// a warp keeps ceil(dh / 32) of a query's outputs.
constexpr int64_t kMaxFlashAttentionHeadDim = 256;

/// One CTA per (query block, head, sequence) walking key blocks up to the
/// causal limit with an online softmax (FlashAttentionGPU.cpp). Fails with
/// the rule when the head size is past kMaxFlashAttentionHeadDim or the
/// shared memory it needs is past `maxSharedBytes`.
LogicalResult lowerFlashAttentionToGPU(FlashAttentionOp op,
                                       moe::LoopBuilder &lb,
                                       int64_t maxSharedBytes);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_BLOCKKERNELSGPU_H
