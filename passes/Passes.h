//===- Passes.h - MoE-MLIR passes and pipelines -----------------*- C++ -*-===//

#ifndef MOE_MLIR_PASSES_PASSES_H
#define MOE_MLIR_PASSES_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassOptions.h"

#include <optional>

namespace mlir {
namespace arith { class ArithDialect; }
namespace bufferization { class BufferizationDialect; }
namespace func { class FuncDialect; class FuncOp; }
namespace gpu { class GPUDialect; }
namespace LLVM { class LLVMDialect; }
namespace NVVM { class NVVMDialect; }
namespace nvgpu { class NVGPUDialect; }
namespace vector { class VectorDialect; }
namespace linalg { class LinalgDialect; }
namespace moek { class MoekDialect; }
namespace math { class MathDialect; }
namespace memref { class MemRefDialect; }
namespace scf { class SCFDialect; }
namespace tensor { class TensorDialect; }
} // namespace mlir

namespace mlir::moe {

/// What a budget's percentage is of, as the messages name it.
inline constexpr const char *kSaveEverythingPeak = "the save-everything peak";
inline constexpr const char *kUntiledPeak = "the untiled peak";

/// A function's request for row slices of its MoE's grouped rows (a block
/// spec's row_slices=S): read by moe-zero-buffer-fusion, which slices, and
/// by the passes that must know the rows are sliced.
inline constexpr const char *kRowSlicesAttr = "moe.row_slices";

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Options of the CPU pipeline.
struct CPUPipelineOptions : public PassPipelineOptions<CPUPipelineOptions> {
  Option<bool> fusion{*this, "fusion",
                      llvm::cl::desc("Run moe-zero-buffer-fusion (no [T*k, H] "
                                     "buffers); false keeps the materializing "
                                     "lowering"),
                      llvm::cl::init(true)};
  Option<int64_t> expertsPerChunk{
      *this, "experts-per-chunk",
      llvm::cl::desc("moe-zero-buffer-fusion: experts run back to back"),
      llvm::cl::init(1)};
  Option<std::string> epilogue{
      *this, "epilogue",
      llvm::cl::desc("moe-zero-buffer-fusion: scatter_add or gather_sum"),
      llvm::cl::init("scatter_add")};
  Option<bool> deviceSplitSizes{
      *this, "device-split-sizes",
      llvm::cl::desc("Expert parallelism: received buffers sized by a bound, "
                     "as CUDA always does (moe-lower-to-kernels)"),
      llvm::cl::init(false)};
};

/// moe IR to planned buffers: [moe-zero-buffer-fusion], moe-lower-to-kernels,
/// moek-lower-to-loops, one-shot bufferization with ownership-based
/// deallocation, moe-plan-memory.
void buildLowerToBuffersPipeline(OpPassManager &pm,
                                 const CPUPipelineOptions &options);

/// Planned buffers to the LLVM dialect; public functions get C interface
/// wrappers.
void buildBuffersToLLVMPipeline(OpPassManager &pm);

/// Options of the CUDA pipeline.
struct CUDAPipelineOptions : public PassPipelineOptions<CUDAPipelineOptions> {
  Option<bool> fusion{*this, "fusion",
                      llvm::cl::desc("Run moe-zero-buffer-fusion"),
                      llvm::cl::init(true)};
  Option<int64_t> expertsPerChunk{
      *this, "experts-per-chunk",
      llvm::cl::desc("moe-zero-buffer-fusion: experts run back to back (0: "
                     "all of them, one launch per GEMM)"),
      llvm::cl::init(0)};
  Option<std::string> epilogue{
      *this, "epilogue",
      llvm::cl::desc("moe-zero-buffer-fusion: scatter_add or gather_sum"),
      llvm::cl::init("scatter_add")};
  Option<std::string> chip{*this, "chip",
                           llvm::cl::desc("GPU architecture (sm_90, sm_90a, sm_80)"),
                           llvm::cl::init("sm_90")};
  Option<std::string> tensorCoreTile{
      *this, "tensor-core-tile",
      llvm::cl::desc("CTA tile of the tensor-core GEMMs: "
                     "BMxBNxBKxSTAGES[xWARPSMxWARPSN]"),
      llvm::cl::init("128x256x32x4x2x4")};
  Option<std::string> flashAttention{
      *this, "flash-attention",
      llvm::cl::desc("The block's attention kernel: auto (tensor cores "
                     "where they apply) or simt"),
      llvm::cl::init("auto")};
  Option<std::string> gemmCluster{
      *this, "gemm-cluster",
      llvm::cl::desc("sm_90a: CTAs of the GEMMs' clusters (TMA multicast of "
                     "b): auto, 1 or 2"),
      llvm::cl::init("auto")};
  Option<std::string> format{
      *this, "format",
      llvm::cl::desc("Kernel binary format: bin (cubin via ptxas), isa (PTX)"),
      llvm::cl::init("bin")};
};

/// moe IR to planned device buffers and gpu.launch kernels: the two below.
void buildLowerToGPUBuffersPipeline(OpPassManager &pm,
                                    const CUDAPipelineOptions &options);

/// moe IR to planned moek kernels, as the CUDA target plans them.
void buildPlannedGPUKernelsPipeline(OpPassManager &pm,
                                    const CUDAPipelineOptions &options);

/// Planned moek kernels to gpu.launch kernels on device buffers.
void buildKernelsToGPUPipeline(OpPassManager &pm,
                               const CUDAPipelineOptions &options);

/// moe IR to planned moek kernels on buffers, the prefix both targets share:
/// (on the CPU) elementwise ops to linalg, [moe-zero-buffer-fusion],
/// moe-lower-to-kernels, one-shot bufferization with deallocation,
/// moe-plan-memory. What moe-place-recomputation lowers each candidate
/// placement with, and what the cost model reads.
void buildPlannedBuffersPipeline(OpPassManager &pm, bool fusion,
                                 int64_t expertsPerChunk, StringRef epilogue,
                                 bool cpu, bool deviceSplitSizes = false);

/// Runs buildPlannedBuffersPipeline on `module` for `target` ("cpu" or
/// "cuda[:sm_XY]") with that target's default experts per chunk (one on
/// the CPU, all on CUDA) unless `expertsPerChunk` > 0: how a pass that
/// searches under a memory budget plans each candidate on a clone.
LogicalResult runPlannedBuffersPipeline(ModuleOp module, StringRef target,
                                        int64_t expertsPerChunk, bool fusion,
                                        StringRef epilogue);

/// The planned peak of intermediate memory moe-plan-memory recorded on
/// `func` (its moe.memory_plan), or nothing when it has no plan.
std::optional<int64_t> plannedPeakBytes(func::FuncOp func);

/// Device kernels to NVVM and a gpu.binary, host code to LLVM calling the
/// mgpu* functions moert provides.
void buildGPUToLLVMPipeline(OpPassManager &pm,
                            const CUDAPipelineOptions &options);

/// Both of the above: the `moe-lower-to-cpu` pipeline.
void buildLowerToCPUPipeline(OpPassManager &pm,
                             const CPUPipelineOptions &options);

/// A memory budget as moe-place-recomputation and moe-batch-tile-attention
/// read it: BYTES (an integer) or PERCENT% of `percentOf` (the
/// save-everything peak of a training step, the untiled peak of a block).
/// Returns "" when `text` is one, else a message saying what is wrong.
std::string checkMemoryBudget(StringRef text,
                              StringRef percentOf = kSaveEverythingPeak);

/// Registers the named pipelines of Pipelines.cpp.
void registerMoePipelines();

} // namespace mlir::moe

#endif // MOE_MLIR_PASSES_PASSES_H
