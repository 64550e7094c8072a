//===- GroupedMatmulTensorCore.h - Tensor-core grouped GEMM -----*- C++ -*-===//
//
// The CUDA lowering of moek.grouped_matmul on tensor cores (mma.sync
// m16n8k16, bf16/f16 operands, f32 accumulation), used by moek-lower-to-gpu
// in place of the SIMT kernel when it applies.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_GROUPEDMATMULTENSORCORE_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_GROUPEDMATMULTENSORCORE_H

#include "dialects/moek/IR/MoekDialect.h"
#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

#include <string>

namespace mlir::moek {

/// Whether the tensor-core kernel handles `op`; if not, `why` (when given)
/// says which rule it misses and the SIMT kernel is the one to use. It needs
/// bf16 or f16 operands a and b of the same type, identity layouts, a
/// contraction depth K and an output width N (N/2 for a GLU) that are
/// multiples of 8, an f32 output for scatter_add, and the nvgpu, vector, nvvm
/// and llvm dialects loaded in the context.
bool canLowerGroupedMatmulToTensorCores(GroupedMatmulOp op,
                                        std::string *why = nullptr);

/// Emits the tensor-core kernel (one gpu.launch) for `op` at the builder's
/// insertion point. Precondition: canLowerGroupedMatmulToTensorCores(op).
void lowerGroupedMatmulToTensorCores(GroupedMatmulOp op, moe::LoopBuilder &lb);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_GROUPEDMATMULTENSORCORE_H
