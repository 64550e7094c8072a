//===- CudaChip.h - What the CUDA target knows of a chip --------*- C++ -*-===//
//
// The one place where a CUDA target string ("cuda", "cuda:sm_90a") and a
// chip name ("sm_80", "sm_90", "sm_90a") are parsed, and the one object that
// holds the chip facts the kernels depend on (shared memory, which
// instructions exist). MLIR-free: moe-run's standalone build (for GPU
// machines without MLIR) uses it too.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_TARGET_CUDACHIP_H
#define MOE_MLIR_LIB_TARGET_CUDACHIP_H

#include <cstdint>
#include <optional>
#include <string>

namespace moe::target {

/// An NVIDIA GPU architecture the kernels are compiled for: compute
/// capability sm / 10 . sm % 10, and whether the code uses the
/// architecture-specific ("a") features, which run on that chip only.
struct CudaChip {
  unsigned sm = 90;
  bool archSpecific = false;

  /// "sm_90a".
  std::string name() const;
  /// Shared memory a block may use, opt-in included.
  int64_t maxSharedBytesPerBlock() const;
  /// red.add.v4.f32 (16-byte vector reductions): sm_90 and later.
  bool hasVectorReductions() const { return sm >= 90; }
  /// wgmma, setmaxnreg: sm_90a only.
  bool hasWarpgroupMma() const { return sm == 90 && archSpecific; }
  /// cp.async.bulk.tensor (TMA): sm_90 and later.
  bool hasTensorMemoryAccelerator() const { return sm >= 90; }
  /// Multiprocessors of the chip's data-center part (H100/H200 SXM: 132,
  /// A100: 108), the size of persistent grids. A part with another count
  /// still computes the right result, with less even load.
  int64_t multiprocessors() const { return sm >= 90 ? 132 : 108; }

  /// The chips artifacts are made for (checked on GPUs).
  static constexpr const char *known = "sm_80, sm_90, sm_90a";
  /// Parses sm_80, sm_86, sm_87, sm_89, sm_90 or sm_90a; nullopt (and
  /// `error`) otherwise.
  static std::optional<CudaChip> parse(const std::string &name,
                                       std::string &error);
  /// Parses an artifact's target: "cuda" (sm_90) or "cuda:CHIP" for a chip
  /// of `known`; nullopt (and `error`) otherwise.
  static std::optional<CudaChip> parseTarget(const std::string &target,
                                             std::string &error);
};

} // namespace moe::target

#endif // MOE_MLIR_LIB_TARGET_CUDACHIP_H
