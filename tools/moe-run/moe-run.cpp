//===- moe-run.cpp - Run a moe program and check it -----------------------===//
//
// moe-run with the compiler: programs (.mlir) and layer specs are compiled
// on the fly into a temporary artifact. Everything else is RunMain.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/RunMain.h"

#include "lib/Driver/Driver.h"
#include "lib/Target/ArtifactCompiler.h"

#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <new>

using namespace mlir;

static int compileWithMlir(const ::moe::run::CompileRequest &request) {
  auto fail = [](const std::string &message) {
    llvm::errs() << "moe-run: error: " << message << "\n";
    return 2;
  };
  std::unique_ptr<MLIRContext> context = mlir::moe::createCompilerContext();
  mlir::moe::OneLineDiagnostics diagnostics(*context, "moe-run");
  OwningOpRef<ModuleOp> module;
  if (request.programPath.empty()) {
    std::string error;
    module = request.blockSpec.empty()
                 ? mlir::moe::loadLayerProgram(*context, request.layerSpec,
                                               error)
                 : mlir::moe::loadBlockProgram(*context, request.blockSpec,
                                               error);
    if (!module)
      return fail(error);
  } else {
    module = mlir::moe::loadProgramFile(*context, request.programPath);
    if (!module)
      return 2;
  }
  std::string error;
  FailureOr<mlir::moe::Target> target = mlir::moe::parseTarget(request.target, error);
  if (failed(target))
    return fail(error);
  if (target->cuda)
    if (std::string missing = mlir::moe::locateCudaToolkit(""); !missing.empty())
      return fail(missing);
  mlir::moe::CompileOptions options;
  options.target = *target;
  options.outputPath = request.outputPath;
  options.fusion = request.fusion;
  options.deviceSplitSizes = request.deviceSplitSizes;
  options.expertsPerChunk = request.expertsPerChunk;
  options.backward = request.backward;
  options.memoryBudget = request.memoryBudget;
  return failed(mlir::moe::compileArtifact(*module, options, llvm::outs())) ? 2 : 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::moe::installToolErrorHandlers("moe-run");
  // Running out of memory outside the compiler (inputs, the reference) is a
  // std::bad_alloc that runMain reports, not LLVM's fatal handler.
  std::set_new_handler(nullptr);
  return ::moe::run::runMain(argc, argv, compileWithMlir);
}
