//===- Driver.h - What moe-compile and moe-run share ------------*- C++ -*-===//

#ifndef MOE_MLIR_LIB_DRIVER_DRIVER_H
#define MOE_MLIR_LIB_DRIVER_DRIVER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include <memory>
#include <string>

namespace mlir::moe {

/// Makes LLVM's fatal errors (and running out of memory) end the tool with
/// `TOOL: error: REASON` and exit status 2, like every other bad input,
/// instead of "LLVM ERROR" and a backtrace. Call once, after InitLLVM.
void installToolErrorHandlers(const char *toolName);

/// A context with every dialect, interface and translation the project uses.
std::unique_ptr<MLIRContext> createCompilerContext();

/// Prints each error as one line, `LOCATION: error: MESSAGE`, to stderr and
/// remembers that one happened. Tools exit with a message, not a backtrace.
class OneLineDiagnostics {
public:
  OneLineDiagnostics(MLIRContext &context, std::string toolName);
  /// Appends each line (with its newline) to `*sink` instead of stderr: the
  /// C API returns the messages to its caller.
  OneLineDiagnostics(MLIRContext &context, std::string toolName,
                     std::string *sink);
  bool hadError() const { return errors > 0; }

private:
  ScopedDiagnosticHandler handler;
  std::string toolName;
  std::string *sink = nullptr;
  int errors = 0;
};

/// Parses and verifies the program in `path` ("-" for stdin). Errors are
/// reported through the context's diagnostics; returns null on failure.
OwningOpRef<ModuleOp> loadProgramFile(MLIRContext &context, StringRef path);

/// Parses and verifies a program given as text; `bufferName` names it in
/// error locations. Returns null on failure (errors as diagnostics).
OwningOpRef<ModuleOp> loadProgramText(MLIRContext &context, StringRef text,
                                      StringRef bufferName);

/// Makes, parses and verifies the program of a layer spec. A malformed or
/// impossible spec sets `error` to one line saying what to fix.
OwningOpRef<ModuleOp> loadLayerProgram(MLIRContext &context, StringRef spec,
                                       std::string &error);

/// The attribute on a block program's function that holds its spec
/// (formatBlockSpec), written to the artifact as `attr block.spec`.
constexpr llvm::StringLiteral kBlockSpecAttr = "moe.block_spec";

/// The same for a block spec (attention, then the MoE layer).
OwningOpRef<ModuleOp> loadBlockProgram(MLIRContext &context, StringRef spec,
                                       std::string &error);

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_DRIVER_DRIVER_H
