//===- MemoryBudget.h - A memory budget option and its bytes ----*- C++ -*-===//
//
// The `memory-budget` of the passes that fit a program under a planned peak
// of intermediate memory (moe-place-recomputation, moe-batch-tile-attention):
// BYTES, PERCENT% of the largest peak the pass could choose (the
// save-everything placement; the untiled attention), or `least`, the
// smallest peak it could choose. One parser, so that both read and refuse
// the same text.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_PASSES_MEMORYBUDGET_H
#define MOE_MLIR_PASSES_MEMORYBUDGET_H

#include "mlir/Support/LLVM.h"

#include <cstdint>
#include <string>

namespace mlir::moe {

struct MemoryBudget {
  bool percent = false;
  /// `least`: the least peak any choice of the pass reaches.
  bool least = false;
  double value = 0;
  /// The budget in bytes; a percentage is of `largestPeak`.
  int64_t bytes(int64_t largestPeak, int64_t leastPeak) const {
    if (least)
      return leastPeak;
    return percent ? int64_t(value / 100.0 * double(largestPeak))
                   : int64_t(value);
  }
};

/// Parses BYTES (a non-negative integer), PERCENT% (non-negative) or
/// `least`; `percentOf` names the peak a percentage is of, for the error
/// message.
FailureOr<MemoryBudget> parseMemoryBudget(StringRef text, StringRef percentOf,
                                          std::string &error);

/// "1.50 MiB", "12.00 KiB", "100 B".
std::string formatBytes(int64_t bytes);

} // namespace mlir::moe

#endif // MOE_MLIR_PASSES_MEMORYBUDGET_H
