//===- Driver.cpp - What moe-compile and moe-run share --------------------===//

#include "lib/Driver/Driver.h"

#include "lib/Layer/LayerProgram.h"
#include "moe-mlir/InitAll.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <cstring>
#include <unistd.h>

using namespace mlir;
using namespace mlir::moe;

static const char *errorToolName = "moe";

/// LLVM's fatal errors and out-of-memory reports end a tool with one line
/// and exit status 2 instead of "LLVM ERROR" and a backtrace. Written with
/// write(2): the heap may be exhausted.
static void reportFatalAndExit(void *, const char *reason, bool) {
  auto put = [](const char *text) {
    if (::write(2, text, std::strlen(text)) < 0)
      return;
  };
  put(errorToolName);
  put(": error: ");
  put(reason ? reason : "fatal error");
  put("\n");
  std::_Exit(2);
}

void mlir::moe::installToolErrorHandlers(const char *toolName) {
  errorToolName = toolName;
  llvm::install_fatal_error_handler(reportFatalAndExit);
  llvm::install_bad_alloc_error_handler(reportFatalAndExit);
}

std::unique_ptr<MLIRContext> mlir::moe::createCompilerContext() {
  DialectRegistry registry;
  registerAllDialects(registry);
  auto context = std::make_unique<MLIRContext>(registry);
  context->loadAllAvailableDialects();
  return context;
}

static std::string describeLocation(Location loc) {
  // Line 0: a whole buffer (a layer spec's program), no place in a file.
  if (auto file = dyn_cast<FileLineColLoc>(loc); file && file.getLine() == 0)
    return "";
  if (auto file = dyn_cast<FileLineColLoc>(loc))
    return (file.getFilename().str() + ":" + std::to_string(file.getLine()) +
            ":" + std::to_string(file.getColumn()));
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location inner : fused.getLocations())
      if (std::string text = describeLocation(inner); !text.empty())
        return text;
  if (auto name = dyn_cast<NameLoc>(loc))
    return describeLocation(name.getChildLoc());
  return "";
}

mlir::moe::OneLineDiagnostics::OneLineDiagnostics(MLIRContext &context,
                                       std::string toolName)
    : OneLineDiagnostics(context, std::move(toolName), nullptr) {}

mlir::moe::OneLineDiagnostics::OneLineDiagnostics(MLIRContext &context,
                                                  std::string toolName,
                                                  std::string *sink)
    : handler(&context,
              [this](Diagnostic &diag) {
                if (diag.getSeverity() == DiagnosticSeverity::Error)
                  ++errors;
                std::string where = describeLocation(diag.getLocation());
                std::string line =
                    (where.empty() ? this->toolName : where) + ": " +
                    (diag.getSeverity() == DiagnosticSeverity::Error
                         ? "error: "
                         : "note: ") +
                    diag.str() + "\n";
                if (this->sink)
                  *this->sink += line;
                else
                  llvm::errs() << line;
                return success();
              }),
      toolName(std::move(toolName)), sink(sink) {}

static OwningOpRef<ModuleOp>
parseAndVerify(MLIRContext &context,
               std::unique_ptr<llvm::MemoryBuffer> buffer) {
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
  OwningOpRef<ModuleOp> module =
      parseSourceFile<ModuleOp>(sourceMgr, ParserConfig(&context));
  if (!module || failed(verify(*module)))
    return nullptr;
  return module;
}

OwningOpRef<ModuleOp> mlir::moe::loadProgramFile(MLIRContext &context,
                                           StringRef path) {
  std::string message;
  std::unique_ptr<llvm::MemoryBuffer> buffer = openInputFile(path, &message);
  if (!buffer) {
    emitError(UnknownLoc::get(&context))
        << "cannot read '" << path << "': " << message;
    return nullptr;
  }
  return parseAndVerify(context, std::move(buffer));
}

OwningOpRef<ModuleOp> mlir::moe::loadProgramText(MLIRContext &context,
                                                 StringRef text,
                                                 StringRef bufferName) {
  return parseAndVerify(context,
                        llvm::MemoryBuffer::getMemBufferCopy(text, bufferName));
}

/// Parses and verifies the program a valid spec made; failing is a bug of
/// the program builder, not of the spec (the diagnostics say what broke).
static OwningOpRef<ModuleOp> loadSpecProgram(MLIRContext &context,
                                             const std::string &text,
                                             StringRef bufferName,
                                             StringRef spec,
                                             std::string &error) {
  OwningOpRef<ModuleOp> module = parseAndVerify(
      context, llvm::MemoryBuffer::getMemBufferCopy(text, bufferName));
  if (!module)
    error = "internal error: the program made from the valid spec '" +
            spec.str() + "' does not parse or verify (please report it)";
  return module;
}

OwningOpRef<ModuleOp> mlir::moe::loadLayerProgram(MLIRContext &context,
                                            StringRef spec,
                                            std::string &error) {
  ::moe::layer::LayerSpec parsed;
  if (!::moe::layer::parseLayerSpec(std::string_view(spec.data(), spec.size()),
                             parsed, error))
    return nullptr;
  return loadSpecProgram(context, ::moe::layer::emitLayerProgram(parsed),
                         "layer-spec", spec, error);
}

OwningOpRef<ModuleOp> mlir::moe::loadBlockProgram(MLIRContext &context,
                                                  StringRef spec,
                                                  std::string &error) {
  ::moe::layer::BlockSpec parsed;
  if (!::moe::layer::parseBlockSpec(std::string_view(spec.data(), spec.size()),
                                    parsed, error))
    return nullptr;
  OwningOpRef<ModuleOp> module =
      loadSpecProgram(context, ::moe::layer::emitBlockProgram(parsed),
                      "block-spec", spec, error);
  // The artifact records the spec (ArtifactMetadata: attr block.spec), so
  // that moe-run can check an artifact of a block against the reference
  // where no compiler is (the GPU machine).
  if (module)
    for (auto func : module->getOps<func::FuncOp>())
      func->setAttr(
          kBlockSpecAttr,
          StringAttr::get(&context, ::moe::layer::formatBlockSpec(parsed)));
  return module;
}
