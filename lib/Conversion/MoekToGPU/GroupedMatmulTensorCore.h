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

/// The CTA tile of the tensor-core kernel: BM rows x BN columns, BK deep
/// per pipeline stage, `stages` stages in flight, warpsM x warpsN warps.
/// The default, 128 x 256 x 32 in 4 stages, was the fastest of those tried
/// on an H100 (bench/RESULTS.md).
struct TensorCoreTile {
  int64_t bm = 128, bn = 256, bk = 32, stages = 4, warpsM = 2, warpsN = 4;

  /// "" if the kernel can use this tile on a chip with `maxSharedBytes` of
  /// shared memory per block, else which rule it breaks.
  std::string validate(int64_t maxSharedBytes) const;
  /// Parses "BMxBNxBKxSTAGES[xWARPSMxWARPSN]" into `out`: "" or the error.
  static std::string parse(llvm::StringRef text, TensorCoreTile &out,
                           int64_t maxSharedBytes);
};

/// The shared memory a block may use on sm_XY (XY = `sm`), opt-in included.
int64_t maxSharedBytesPerBlock(unsigned sm);

/// The operands of one tensor-core GEMM launch: those of a
/// moek.grouped_matmul, or a plain GEMM c = a * b[0] when `offsets` is null
/// (one group made of every row of a).
struct TensorCoreGemm {
  Value a, b, c;
  Value offsets, owners, weights; // offsets null: one group of all rows
  Value firstExpert, lastExpert;  // null: all experts of b
  Epilogue epilogue = Epilogue::store;
  bool gather = false;
  int64_t topK = 1;
  TensorCoreTile tile;
  /// The scatter-add epilogue adds two columns per red.add.v2.f32 (sm_90+).
  bool vectorAtomics = false;

  static TensorCoreGemm of(GroupedMatmulOp op);
};

/// Whether the tensor-core kernel handles `gemm`; if not, `why` (when given)
/// says which rule it misses and the SIMT kernel is the one to use. It needs
/// bf16 or f16 operands a and b of the same type, identity layouts, a
/// contraction depth K and an output width N (N/2 for a GLU) that are
/// multiples of 8, an f32 output for scatter_add, and the nvgpu, vector, nvvm
/// and llvm dialects loaded in the context.
bool canLowerToTensorCores(const TensorCoreGemm &gemm, MLIRContext *context,
                           std::string *why = nullptr);

/// Emits the tensor-core kernel (one gpu.launch) for `gemm` at the builder's
/// insertion point. Precondition: canLowerToTensorCores(gemm).
void lowerToTensorCores(const TensorCoreGemm &gemm, moe::LoopBuilder &lb);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_GROUPEDMATMULTENSORCORE_H
