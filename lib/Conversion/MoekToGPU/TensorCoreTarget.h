//===- TensorCoreTarget.h - The GPU passes' chip and tile options -*- C++ -*-===//
//
// The `chip` and `tensor-core-tile` options that moek-tile-grouped-matmuls
// and moek-lower-to-gpu share, parsed in one place.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_TENSORCORETARGET_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_TENSORCORETARGET_H

#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Target/CudaChip.h"

#include <optional>
#include <string>

namespace mlir::moek {

/// What a GPU pass's `chip` and `tensor-core-tile` options name.
struct TensorCoreTarget {
  ::moe::target::CudaChip chip;
  TensorCoreTile tile;
};

/// Parses those options (the tile against the chip's shared memory), or
/// emits the error on `root`, prefixed with `passName`, and returns nullopt.
inline std::optional<TensorCoreTarget>
parseTensorCoreTarget(Operation *root, llvm::StringRef passName,
                      const std::string &chip, llvm::StringRef tile) {
  std::string why;
  std::optional<::moe::target::CudaChip> parsed =
      ::moe::target::CudaChip::parse(chip, why);
  if (!parsed) {
    root->emitError() << passName << ": " << why;
    return std::nullopt;
  }
  TensorCoreTarget target{*parsed, {}};
  why = TensorCoreTile::parse(tile, target.tile,
                              parsed->maxSharedBytesPerBlock());
  if (!why.empty()) {
    root->emitError() << passName << ": tensor-core-tile: " << why;
    return std::nullopt;
  }
  return target;
}

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_TENSORCORETARGET_H
