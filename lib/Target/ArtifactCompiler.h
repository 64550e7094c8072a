//===- ArtifactCompiler.h - moe modules to artifacts ------------*- C++ -*-===//

#ifndef MOE_MLIR_LIB_TARGET_ARTIFACTCOMPILER_H
#define MOE_MLIR_LIB_TARGET_ARTIFACTCOMPILER_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace mlir::moe {

enum class EmitKind {
  Mlir,     ///< the module in the LLVM dialect, after the pipeline
  Llvm,     ///< LLVM IR after optimization
  Artifact, ///< a shared object that moert loads
  Ptx,      ///< the PTX of the GPU kernels (CUDA targets)
};

/// What an artifact runs on: `cpu`, or `cuda:sm_XY`.
struct Target {
  bool cuda = false;
  std::string chip; ///< "sm_90" for cuda (CudaChip::name)
  std::string name() const { return cuda ? "cuda:" + chip : "cpu"; }
  /// Shared memory a block may use on the chip (CUDA targets).
  int64_t maxSharedBytesPerBlock() const;
};

/// Parses "cpu", "cuda" (sm_90), "cuda:sm_90", "cuda:sm_90a", "cuda:sm_80"; an error
/// message that lists the targets otherwise.
FailureOr<Target> parseTarget(StringRef text, std::string &error);

/// Makes ptxas and libdevice findable by MLIR's NVVM serializer: `cudaPath`
/// if given, else
/// $CUDA_HOME, else /usr/local/cuda. Returns "" or an error saying what to
/// install or pass.
std::string locateCudaToolkit(StringRef cudaPath);

/// "" when the cost model's table has device `id`, else a message that
/// lists the devices it has.
std::string checkCostDevice(StringRef id);

struct CompileOptions {
  Target target;
  EmitKind emit = EmitKind::Artifact;
  /// Where the artifact goes (EmitKind::Artifact).
  std::string outputPath;
  /// LLVM optimization level, 0 to 3.
  unsigned optLevel = 3;
  /// Zero-buffer dispatch fusion (false: the materializing lowering).
  bool fusion = true;
  /// moe-zero-buffer-fusion's experts-per-chunk; 0 is the target's default:
  /// 1 on the CPU (the smallest activation buffer), all experts on CUDA
  /// (one launch per GEMM).
  int64_t expertsPerChunk = 0;
  /// moe-zero-buffer-fusion's epilogue: scatter_add, gather_sum, or auto
  /// (the default): on CUDA without a memory budget the faster predicted
  /// one (moe-choose-epilogue), else scatter_add (the least memory).
  /// gather_sum measured faster on all three presets on the H200
  /// (bench/RESULTS.md, 2026-11-30 08:18-08:26 UTC).
  std::string epilogue = "auto";
  /// How GEMM 1 reads its rows (moe-zero-buffer-fusion's dispatch): gather
  /// (the default: each row's token from x, in the GEMM) or copy (a
  /// dispatched [T*k, H] copy, by TMA on sm_90a; for measurement: on
  /// mixtral's forward on the H200 it was level with gather,
  /// bench/RESULTS.md, 2026-12-02).
  std::string dispatch = "gather";
  /// Print moe-choose-epilogue's remarks (each candidate's prediction and
  /// the choice): when the caller asked for auto, not when it is the
  /// default.
  bool explainEpilogue = false;
  /// Expert parallelism: the all-to-all's received buffers sized by a bound
  /// (R times the rows a rank sends), the rows past the counts no expert's,
  /// so that the host never reads a split size. Always so on CUDA; on the
  /// CPU it tests that path without a GPU.
  bool deviceSplitSizes = false;
  /// CUDA: the CTA tile of the tensor-core GEMMs ("" for the default).
  std::string tensorCoreTile;
  /// CUDA: the block's attention kernel, "auto" (tensor cores where they
  /// apply) or "simt".
  std::string flashAttention = "auto";
  /// CUDA sm_90a: the GEMMs' thread block clusters, "auto", "1" or "2"
  /// (moek-lower-to-gpu's gemm-cluster).
  std::string gemmCluster = "auto";
  /// Where to write the memory plan as JSON ("" for none).
  std::string memoryReportPath;
  /// Stop after the memory plan: no code is generated (a report only).
  bool planOnly = false;
  /// Compile the training program (moe-generate-backward) instead of the
  /// forward: each function F becomes F_train.
  bool backward = false;
  /// The training step's memory budget for moe-place-recomputation: BYTES
  /// or PERCENT% of the save-everything peak ("" keeps the default
  /// placement).
  std::string memoryBudget;
  /// Where to write the cost model's predicted kernel times as JSON ("" for
  /// none).
  std::string costReportPath;
  /// The cost model's device ("" for the target's).
  std::string costDevice;
};

/// Lowers `module` (moe IR, modified in place) for the target and writes what
/// `options.emit` asks for: text to `textOut`, or the artifact to
/// `options.outputPath`. Errors are reported as diagnostics on the module's
/// context.
LogicalResult compileArtifact(ModuleOp module, const CompileOptions &options,
                              llvm::raw_ostream &textOut);

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_TARGET_ARTIFACTCOMPILER_H
