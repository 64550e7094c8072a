//===- MemoryReport.h - The memory plan, as JSON and metadata ---*- C++ -*-===//

#ifndef MOE_MLIR_LIB_TARGET_MEMORYREPORT_H
#define MOE_MLIR_LIB_TARGET_MEMORYREPORT_H

#include "lib/Analysis/CostModel/CostModel.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <map>
#include <string>

namespace mlir::moe {

/// One planned buffer of moe-plan-memory.
struct PlannedBuffer {
  std::string name, category;
  int64_t bytes = 0, offset = 0, firstUse = 0, lastUse = 0;
  /// The result whose bytes hold it before that result is written (offset
  /// is then into the result); empty: the arena.
  std::string inResult;
};

/// The plan of one function.
struct MemoryPlan {
  int64_t peakIntermediateBytes = 0;
  std::vector<PlannedBuffer> buffers;
  std::vector<std::string> unplannedDynamic;
  /// Bytes of the planned buffers per category (not a peak: their sum).
  std::map<std::string, int64_t> bytesByCategory() const;
};

/// Function name -> plan, from the `moe.memory_plan` attributes.
using MemoryPlans = std::map<std::string, MemoryPlan>;

MemoryPlans collectMemoryPlans(ModuleOp module);

/// Writes {"functions": {NAME: {"peak_intermediate_bytes": N,
/// "by_category": {...}, "buffers": [...], "unplanned_dynamic": [...]}}}
/// plus the same keys at the top level for the first function.
LogicalResult writeMemoryReport(ModuleOp module, const MemoryPlans &plans,
                                StringRef path);

/// Inserts into the artifact metadata, before each function's `end` line,
/// the lines `attrsOf(function name)` returns (each ending in a newline).
std::string
addFunctionAttrsToMetadata(StringRef metadata,
                           llvm::function_ref<std::string(StringRef)> attrsOf);

/// Adds `attr memory.*` lines to each function of the artifact metadata.
std::string addMemoryPlansToMetadata(StringRef metadata,
                                     const MemoryPlans &plans);

/// Adds `attr cost.predicted_ms=...` and `attr cost.kernel.NAME=MS` lines to
/// each function of the artifact metadata (moe-run --profile prints them).
std::string addCostsToMetadata(StringRef metadata,
                               ArrayRef<FunctionCost> costs,
                               const ::moe::cost::DeviceDescription &device);

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_TARGET_MEMORYREPORT_H
