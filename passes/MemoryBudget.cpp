//===- MemoryBudget.cpp - A memory budget option and its bytes ------------===//

#include "passes/MemoryBudget.h"
#include "passes/Passes.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::moe;

FailureOr<MemoryBudget> mlir::moe::parseMemoryBudget(StringRef text,
                                                     StringRef percentOf,
                                                     std::string &error) {
  MemoryBudget budget;
  StringRef number = text.trim();
  if (number == "least") {
    budget.least = true;
    return budget;
  }
  if (number.consume_back("%"))
    budget.percent = true;
  double value;
  if (number.empty() || number.getAsDouble(value) || !(value >= 0) ||
      (!budget.percent && value != double(int64_t(value)))) {
    error = "'" + text.str() +
            "' is not a number of bytes (e.g. 1073741824), a percentage of " +
            percentOf.str() + " (e.g. 50%) or 'least'";
    return failure();
  }
  budget.value = value;
  return budget;
}

std::string mlir::moe::checkMemoryBudget(StringRef text, StringRef percentOf) {
  std::string error;
  return succeeded(parseMemoryBudget(text, percentOf, error)) ? std::string()
                                                              : error;
}

std::string mlir::moe::formatBytes(int64_t bytes) {
  if (bytes >= (int64_t(1) << 30))
    return llvm::formatv("{0:f2} GiB", double(bytes) / double(1 << 30));
  if (bytes >= (int64_t(1) << 20))
    return llvm::formatv("{0:f2} MiB", double(bytes) / double(1 << 20));
  if (bytes >= 1024)
    return llvm::formatv("{0:f2} KiB", double(bytes) / 1024.0);
  return std::to_string(bytes) + " B";
}
