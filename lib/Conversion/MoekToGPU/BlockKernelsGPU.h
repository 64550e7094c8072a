//===- BlockKernelsGPU.h - The block's kernels on CUDA ----------*- C++ -*-===//
//
// The CUDA lowerings of the block's moek kernels, one a file: moek.matmul
// (MatmulGPU.cpp), moek.rms_norm (RmsNormGPU.cpp) and moek.flash_attention
// (FlashAttentionGPU.cpp, SIMT; FlashAttentionTensorCore.cpp, mma.sync).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_BLOCKKERNELSGPU_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_BLOCKKERNELSGPU_H

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"

#include <string>

namespace mlir::moek {

/// c = a . b: a tensor-core kernel of the grouped matmul with one group
/// (as the router's scores) where it applies (bf16/f16, K and N multiples
/// of 8) — the sm_90a one (wgmma, TMA, a persistent grid of
/// `multiprocessors` CTAs) when `warpgroupMma`, else mma.sync on `tile` —
/// otherwise a thread per output element.
void lowerMatmulToGPU(MatmulOp op, moe::LoopBuilder &lb,
                      const TensorCoreTile &tile, bool warpgroupMma,
                      int64_t multiprocessors);

/// A warp per row: the sum of squares in f32 across the lanes (a butterfly
/// of shuffles), then each lane scales its columns.
void lowerRmsNormToGPU(RmsNormOp op, moe::LoopBuilder &lb);

/// The largest head size the flash-attention kernel supports: each lane of
/// a warp keeps ceil(dh / 32) of a query's outputs.
constexpr int64_t kMaxFlashAttentionHeadDim = 256;

/// The SIMT kernel (FlashAttentionGPU.cpp): one CTA per (query block, head,
/// sequence) walking key blocks up to the causal limit with an online
/// softmax, for any storage type and head size. Fails with
/// the rule when the head size is past kMaxFlashAttentionHeadDim or the
/// shared memory it needs is past `maxSharedBytes`.
LogicalResult lowerFlashAttentionToGPU(FlashAttentionOp op,
                                       moe::LoopBuilder &lb,
                                       int64_t maxSharedBytes);

/// The launch of a flash-attention kernel named `name`: a CTA of `threads`
/// threads per (block of `queries` queries of `length`, head, sequence of
/// `batch`), at least one CTA along each dimension (a launch of zero blocks
/// is an error), `sharedBytes` of dynamic shared memory. The builder is left
/// at the start of the kernel's body (callers guard their insertion point).
gpu::LaunchOp launchFlashAttentionGrid(moe::LoopBuilder &lb, Value length,
                                       Value batch, int64_t queries,
                                       int64_t heads, int64_t threads,
                                       int64_t sharedBytes, StringRef name);

/// The first query of the CTA's block in a launch of
/// launchFlashAttentionGrid: blocks in reverse order of their queries, so
/// that the CTAs with the most keys to attend to (causal: the last queries)
/// start first and the lightest ones fill the launch's last wave.
Value flashQueryBlockStart(moe::LoopBuilder &lb, gpu::LaunchOp launch,
                           int64_t queries);

/// The largest head size of the tensor-core flash-attention kernel: a lane
/// keeps dh / 2 f32 output accumulators in registers.
constexpr int64_t kMaxTensorCoreHeadDim = 128;

/// Whether the tensor-core kernel (FlashAttentionTensorCore.cpp) handles
/// `op`: a bf16/f16 output, a head size that is a multiple of 16 and at most
/// kMaxTensorCoreHeadDim, the mma dialects loaded. If not, `why` (when
/// given) says which rule it misses and the SIMT kernel runs it.
bool canLowerFlashAttentionToTensorCores(FlashAttentionOp op,
                                         std::string *why = nullptr);

/// Emits the tensor-core kernel (FlashAttention-2's schedule on mma.sync
/// m16n8k16, f32 accumulation). Precondition:
/// canLowerFlashAttentionToTensorCores(op).
void lowerFlashAttentionToTensorCores(FlashAttentionOp op,
                                      moe::LoopBuilder &lb);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_BLOCKKERNELSGPU_H
