//===- FuzzMlir.h - What the MLIR fuzz targets share ------------*- C++ -*-===//
//
// A fresh MLIR context per input (so that a finding reproduces from its input
// alone), diagnostics captured instead of printed, and LLVM's fatal errors
// turned into aborts that libFuzzer reports as crashes.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_TEST_FUZZ_FUZZMLIR_H
#define MOE_MLIR_TEST_FUZZ_FUZZMLIR_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringRef.h"

#include <memory>
#include <string>

namespace moefuzz {

/// MOE_FUZZ_VERBOSE=1: print what a run captures and does.
bool verbose();

/// Once per process: installs the fatal-error handlers and builds the
/// dialect registry (every dialect, interface and translation the tools
/// have, as lib/InitAll registers them).
void initialize();

/// A new single-threaded context over that registry.
std::unique_ptr<mlir::MLIRContext> createContext();

/// Collects the diagnostics of a context: a failed parse, verification or
/// pass is a normal outcome of fuzzing, not something to print each time.
/// With MOE_FUZZ_VERBOSE=1 in the environment they go to stderr too.
class CapturedDiagnostics {
public:
  explicit CapturedDiagnostics(mlir::MLIRContext &context);
  const std::string &text() const { return messages; }
  int numErrors() const { return errors; }
  void clear() {
    messages.clear();
    errors = 0;
  }

private:
  std::string messages;
  int errors = 0;
  mlir::ScopedDiagnosticHandler handler;
};

/// Parses (and verifies, as the parser does) `text` as a module.
mlir::OwningOpRef<mlir::ModuleOp> parseModule(mlir::MLIRContext &context,
                                              llvm::StringRef text,
                                              llvm::StringRef bufferName);

/// Prints `what`, then the details, and aborts: a finding. libFuzzer saves
/// the input and reports the stack.
[[noreturn]] void fail(const std::string &what, const std::string &details);

/// True when the nesting of brackets in `text` goes deeper than `limit`:
/// MLIR's recursive-descent parser would then run out of stack, an upstream
/// limit rather than a finding of this project.
bool nestsDeeperThan(llvm::StringRef text, int limit);

} // namespace moefuzz

#endif // MOE_MLIR_TEST_FUZZ_FUZZMLIR_H
