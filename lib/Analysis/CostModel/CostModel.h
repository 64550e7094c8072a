//===- CostModel.h - Predicted kernel times of a planned program -*- C++ -*-===//
//
// The analysis the passes share to compare choices by predicted time: for a
// function of moek kernels on buffers (after moe-lower-to-kernels, before
// the target lowering), the work of each kernel (flops with GEMM tile
// padding, bytes, launches) and its predicted time on a device of
// DeviceTables.def. moe-place-recomputation minimizes it; moe-compile
// --report-cost writes it; the artifact metadata carries it so that
// `moe-run --profile` prints it beside the measured kernels.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_ANALYSIS_COSTMODEL_COSTMODEL_H
#define MOE_MLIR_LIB_ANALYSIS_COSTMODEL_COSTMODEL_H

#include "lib/Analysis/CostModel/DeviceTable.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <map>

namespace mlir {
namespace func {
class FuncOp;
} // namespace func

namespace moe {

/// Dynamic extents (a dynamic token count) are assumed to be this.
constexpr int64_t kAssumedDynamicExtent = 1024;

/// One kernel's predicted time.
struct KernelEstimate {
  ::moe::cost::KernelWork work;
  double ms = 0;
};

/// One collective's predicted time, and how much of it the kernels that
/// run between its start and its wait can hide (0 for a blocking one).
struct CollectiveEstimate {
  ::moe::cost::KernelWork work;
  double ms = 0;
  double hiddenMs = 0;
};

/// The predicted time of one function (one call).
struct FunctionCost {
  std::string function;
  std::vector<KernelEstimate> kernels; ///< in program order
  std::vector<CollectiveEstimate> collectives; ///< in program order
  double kernelMs = 0;                 ///< sum over the kernels
  double communicationMs = 0;          ///< sum over the collectives
  double hiddenMs = 0;                 ///< of it, beside the kernels
  /// The all-to-alls' overhead on the compute lane (allToAllOverheadUs
  /// each).
  double allToAllOverheadMs = 0;
  double dynamicExtent = kAssumedDynamicExtent; ///< a dynamic extent, assumed
  /// Kernels, the communication not hidden, and the call's synchronization.
  double totalMs = 0;
  /// Predicted ms per kernel name, summed (profiles aggregate by name).
  std::map<std::string, double> msByName() const;
};

/// A grouped GEMM as moek.grouped_matmul runs it: `rows` routed rows over
/// `experts` experts, `expertsPerLaunch` of them a launch, a [rows, k] of
/// `aBytes` elements, b [E, k, n] of `bBytes`, and `outBytes` the bytes
/// its epilogue moves in all.
struct GroupedGemmShape {
  double rows = 0, experts = 1, expertsPerLaunch = 1, topK = 1;
  double k = 0, n = 0;
  double aBytes = 2, bBytes = 2, outBytes = 0;
};

/// The work of that GEMM on `device` (tensor cores for half operands whose
/// k and n are multiples of 8): flops with the tiles' padding, bytes with
/// the weights' re-reads beyond the cache, tiles for the wave term. The
/// cost of a moek.grouped_matmul, and what passes that choose before the
/// kernels exist (moe-overlap-communication) price expert GEMMs with.
::moe::cost::KernelWork
groupedMatmulWork(const ::moe::cost::DeviceDescription &device,
                  std::string name, const GroupedGemmShape &shape,
                  bool halfOperands);

/// The cost of `func`, a function of moek kernels on buffers.
FunctionCost estimateFunctionCost(func::FuncOp func,
                                  const ::moe::cost::DeviceDescription &device);

/// The cost of every public function with a body.
std::vector<FunctionCost>
estimateModuleCost(ModuleOp module,
                   const ::moe::cost::DeviceDescription &device);

/// Writes {"device": ID, "functions": {NAME: {"total_ms", "kernel_ms",
/// "sync_ms", "communication_ms", "hidden_ms", "all_to_all_overhead_ms",
/// "assumed_dynamic_extent", "kernels": [{"name", "op",
/// "flops", "bytes", "launches", "tensor_core", "tiles_per_launch",
/// "wave_slots", "waves_per_launch", "wave_flops", "predicted_ms"}],
/// "collectives": [{"name", "op", "bytes", "launches", "predicted_ms",
/// "hidden_ms"}]}}} plus "total_ms" and "kernels" of the first function at
/// the top level.
LogicalResult writeCostReport(ModuleOp module,
                              ArrayRef<FunctionCost> costs,
                              const ::moe::cost::DeviceDescription &device,
                              StringRef path);

} // namespace moe
} // namespace mlir

#endif // MOE_MLIR_LIB_ANALYSIS_COSTMODEL_COSTMODEL_H
