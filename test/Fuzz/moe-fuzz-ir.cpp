//===- moe-fuzz-ir.cpp - Fuzz the moe IR parser, verifiers and pipelines --===//
//
// The input is a module of the project's dialects (moe, moek) with the
// upstream ones that moe programs and kernel-level tests use around them. It
// is parsed and verified; a module that verifies must print and parse back
// (custom and generic form); then each pipeline runs on a clone of it:
//
//   moe-lower-to-cpu                  (fusion, the moe-compile default)
//   moe-lower-to-cpu{fusion=false}    (the materializing lowering)
//   moe-lower-to-cuda{format=isa}     as far as the LLVM and NVVM dialects:
//                                      every pass but gpu-module-to-binary,
//                                      the one stage that needs the CUDA
//                                      toolkit (libdevice even for PTX,
//                                      ptxas for cubins)
//
// A failed parse, verification or pass is a normal outcome. Findings (an
// abort) are: a crash or sanitizer report anywhere, an LLVM fatal error, a
// verified module that does not print and parse back, a pass that succeeds
// but leaves IR that does not verify, and a pipeline that fails without
// saying why (no error diagnostic: the tools would exit 2 in silence).
//
//===----------------------------------------------------------------------===//

#include "test/Fuzz/FuzzMlir.h"
#include "test/Fuzz/FuzzMutate.h"

#include "passes/Passes.h"

#include "mlir/IR/OperationSupport.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassInstrumentation.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "moe-mlir/InitAll.h"
#include "llvm/Support/raw_ostream.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <regex>
#include <string>

using namespace mlir;
using moefuzz::fail;

namespace {

/// Inputs beyond this are rejected: the seeds are at most a few KiB, and
/// larger inputs only slow each run down.
constexpr size_t kMaxInputBytes = 32 * 1024;
constexpr int kMaxNesting = 48;

/// The dialects a module may use to be run through the pipelines. Anything
/// else (spirv, ...) still gets parsed and verified, but the pipelines are
/// not meant for it and the crashes would be upstream MLIR's.
bool inScope(ModuleOp module) {
  static const llvm::StringRef allowed[] = {
      "builtin", "func", "moe", "moek", "arith", "tensor", "math", "memref",
      "scf"};
  WalkResult result = module->walk([](Operation *op) {
    llvm::StringRef ns = op->getName().getDialectNamespace();
    for (llvm::StringRef name : allowed)
      if (ns == name)
        return WalkResult::advance();
    return WalkResult::interrupt();
  });
  return !result.wasInterrupted();
}

std::string print(Operation *op, bool generic) {
  std::string text;
  llvm::raw_string_ostream os(text);
  OpPrintingFlags flags;
  if (generic)
    flags.printGenericOpForm();
  op->print(os, flags);
  return text;
}

/// Verifies the IR after each pass that reports success (the pass manager's
/// own verifier is off, so that a broken invariant is told apart from a pass
/// that fails cleanly).
class VerifyAfterEachPass : public PassInstrumentation {
public:
  VerifyAfterEachPass(std::string pipeline, const std::string &input,
                      const moefuzz::CapturedDiagnostics &diagnostics)
      : pipeline(std::move(pipeline)), input(input),
        diagnostics(diagnostics) {}

  void runAfterPass(Pass *pass, Operation *op) override {
    if (succeeded(verify(op)))
      return;
    llvm::StringRef passName = pass->getArgument();
    if (passName.empty())
      passName = pass->getName();
    fail("pass '" + passName.str() + "' of " + pipeline +
             " succeeded but left IR that does not verify",
         "diagnostics:\n" + diagnostics.text() + "\ninput:\n" + input);
  }

private:
  std::string pipeline;
  const std::string &input;
  const moefuzz::CapturedDiagnostics &diagnostics;
};

void runPipeline(MLIRContext &context, ModuleOp module,
                 moefuzz::CapturedDiagnostics &diagnostics,
                 const std::string &input, const std::string &name,
                 const std::function<void(OpPassManager &)> &build) {
  OwningOpRef<ModuleOp> clone = module.clone();
  diagnostics.clear();
  PassManager pm(&context);
  pm.enableVerifier(false);
  pm.addInstrumentation(
      std::make_unique<VerifyAfterEachPass>(name, input, diagnostics));
  build(pm);
  bool ok = succeeded(pm.run(*clone));
  if (moefuzz::verbose())
    llvm::errs() << "==moe-fuzz== " << name << ": "
                 << (ok ? "succeeded" : "failed") << "\n";
  if (ok) {
    if (failed(verify(*clone)))
      fail(name + " succeeded but its result does not verify",
           diagnostics.text() + "\ninput:\n" + input);
    return;
  }
  if (diagnostics.numErrors() == 0)
    fail(name + " failed without an error diagnostic",
         diagnostics.text() + "\ninput:\n" + input);
}

/// moe-lower-to-cuda{format=isa} without gpu-module-to-binary, as a textual
/// pipeline: every pass of it is registered, and that one is cut out of the
/// text (the passes after it still run, on the unserialized gpu.module).
const std::string &cudaPipelineText() {
  static const std::string text = [] {
    std::unique_ptr<MLIRContext> context = moefuzz::createContext();
    PassManager pm(context.get());
    mlir::moe::CUDAPipelineOptions options;
    options.format = "isa";
    mlir::moe::buildLowerToGPUBuffersPipeline(pm, options);
    mlir::moe::buildGPUToLLVMPipeline(pm, options);
    std::string full;
    llvm::raw_string_ostream os(full);
    pm.printAsTextualPipeline(os);
    std::regex binary("gpu-module-to-binary(\\{[^}]*\\})?,?");
    std::string cut = std::regex_replace(full, binary, "");
    if (cut == full)
      fail("the CUDA pipeline has no gpu-module-to-binary to cut out", full);
    // The passes, without the anchor ("any(...)" or "builtin.module(...)").
    llvm::StringRef inner(cut);
    if ((inner.consume_front("any(") ||
         inner.consume_front("builtin.module(")) &&
        inner.consume_back(")"))
      return inner.str();
    fail("the CUDA pipeline does not print as any(...)", cut);
  }();
  return text;
}

} // namespace

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size,
                                          size_t maxSize, unsigned seed) {
  return moefuzz::mutateText(data, size, maxSize, seed);
}

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  moefuzz::initialize();
  mlir::moe::registerAllPasses(); // The CUDA pipeline is parsed from text.
  (void)cudaPipelineText();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > kMaxInputBytes)
    return -1;
  std::string input(reinterpret_cast<const char *>(data), size);
  if (moefuzz::nestsDeeperThan(input, kMaxNesting))
    return -1;

  std::unique_ptr<MLIRContext> context = moefuzz::createContext();
  moefuzz::CapturedDiagnostics diagnostics(*context);
  OwningOpRef<ModuleOp> module =
      moefuzz::parseModule(*context, input, "fuzz-input");
  if (!module)
    return 0;
  if (!inScope(*module))
    return 0;

  // What verifies prints and parses back, in both forms.
  for (bool generic : {false, true}) {
    std::string printed = print(*module, generic);
    diagnostics.clear();
    if (!moefuzz::parseModule(*context, printed, "printed"))
      fail(std::string("a verified module does not parse back from its ") +
               (generic ? "generic" : "custom") + " form",
           diagnostics.text() + "\nprinted:\n" + printed + "\ninput:\n" +
               input);
  }

  runPipeline(*context, *module, diagnostics, input, "moe-lower-to-cpu",
              [](OpPassManager &pm) {
                mlir::moe::CPUPipelineOptions options;
                mlir::moe::buildLowerToCPUPipeline(pm, options);
              });
  runPipeline(*context, *module, diagnostics, input,
              "moe-lower-to-cpu{fusion=false}", [](OpPassManager &pm) {
                mlir::moe::CPUPipelineOptions options;
                options.fusion = false;
                mlir::moe::buildLowerToCPUPipeline(pm, options);
              });
  runPipeline(*context, *module, diagnostics, input,
              "moe-lower-to-cuda{format=isa} (but gpu-module-to-binary)",
              [](OpPassManager &pm) {
                if (failed(parsePassPipeline(cudaPipelineText(), pm)))
                  fail("the CUDA pipeline does not parse back",
                       cudaPipelineText());
              });
  return 0;
}
