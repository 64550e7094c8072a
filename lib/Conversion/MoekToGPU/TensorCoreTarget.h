//===- TensorCoreTarget.h - The GPU passes' target options ----*- C++ -*-===//
//
// The `chip`, `tensor-core-tile` and `gemm-cluster` options that
// moek-tile-grouped-matmuls and moek-lower-to-gpu share, parsed in one
// place.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_TENSORCORETARGET_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_TENSORCORETARGET_H

#include "lib/Conversion/MoekToGPU/GroupedMatmulTensorCore.h"
#include "lib/Target/CudaChip.h"

#include <optional>
#include <string>

namespace mlir::moek {

/// What a GPU pass's `chip`, `tensor-core-tile` and `gemm-cluster` options
/// name.
struct TensorCoreTarget {
  ::moe::target::CudaChip chip;
  TensorCoreTile tile;
  /// The sm_90a GEMMs' cluster size when gemm-cluster forces one.
  std::optional<int64_t> gemmClusterForced;

  /// CTAs of a cluster for `gemm` on the sm_90a kernel (TMA multicast of b
  /// to both CTAs of a pair): the forced size, else 2 for a grouped matmul
  /// and 1 for a plain one (and always 1 off sm_90a, whose kernel alone
  /// has clusters), but for the backward's GEMM that gathers dy's rows for
  /// a transposed b, not yet measured in pairs. On the H200 pairs made
  /// mixtral's store GEMM 9-12% faster (2026-11-30). The gathered GLU
  /// GEMMs looked no faster in pairs in bursts of 10-20 forwards, but held
  /// at the card's 700 W cap (200-600 forwards a run, 2026-12-02) the
  /// forward with them in pairs was 1.4% (mixtral), 0.6% (qwen3_30b_a3b)
  /// and 1.9% (olmoe) faster in every round: a weight tile read once for
  /// two row tiles costs less power, and power sets the clock. The
  /// router's scores GEMM (plain, every CTA reading all of w_gate at each k
  /// step) was no faster in pairs on qwen3_30b_a3b and mixtral and 40%
  /// slower on olmoe (2026-12-01).
  int64_t clusterSize(const TensorCoreGemm &gemm) const {
    if (!chip.hasWarpgroupMma())
      return 1;
    if (gemmClusterForced)
      return *gemmClusterForced;
    return gemm.offsets && !(gemm.gather && gemm.transposeB) ? 2 : 1;
  }
};

/// Parses those options (the tile against the chip's shared memory), or
/// emits the error on `root`, prefixed with `passName`, and returns nullopt.
inline std::optional<TensorCoreTarget>
parseTensorCoreTarget(Operation *root, llvm::StringRef passName,
                      const std::string &chip, llvm::StringRef tile,
                      llvm::StringRef gemmCluster) {
  std::string why;
  std::optional<::moe::target::CudaChip> parsed =
      ::moe::target::CudaChip::parse(chip, why);
  if (!parsed) {
    root->emitError() << passName << ": " << why;
    return std::nullopt;
  }
  TensorCoreTarget target{*parsed, {}, std::nullopt};
  why = TensorCoreTile::parse(tile, target.tile,
                              parsed->maxSharedBytesPerBlock());
  if (!why.empty()) {
    root->emitError() << passName << ": tensor-core-tile: " << why;
    return std::nullopt;
  }
  if (why = checkGemmCluster(gemmCluster); !why.empty()) {
    root->emitError() << passName << ": gemm-cluster: " << why;
    return std::nullopt;
  }
  if (gemmCluster != "auto")
    target.gemmClusterForced = gemmCluster == "1" ? 1 : 2;
  return target;
}

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_TENSORCORETARGET_H
