//===- UnknownKernelTest.cpp - Lowerings never drop a kernel they do not know ===//
//
// A kernel-dialect op that a lowering has no rule for (one added to the
// dialect later, say) must fail the pass with a diagnostic on that op: the
// CPU lowering used to erase it silently and the GPU lowering to assert. No
// such op can be written in IR (the moek dialect refuses unknown ops), so
// the test builds one.
//
//===----------------------------------------------------------------------===//

#include "dialects/moek/IR/MoekDialect.h"
#include "moe-mlir/InitAll.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>
#include <memory>
#include <string>

using namespace mlir;

namespace {

/// Runs `pass` on a function holding the unregistered op "moek.future_kernel"
/// and returns the error it reported ("" if none); `failed` says whether the
/// pass failed.
std::string runOnUnknownKernel(std::unique_ptr<Pass> pass, bool &failed) {
  DialectRegistry registry;
  moe::registerAllDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  std::string message;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    if (diag.getSeverity() == DiagnosticSeverity::Error && message.empty())
      message = diag.str();
    return success();
  });
  OpBuilder b(&context);
  Location loc = b.getUnknownLoc();
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(b, loc, "f", b.getFunctionType({}, {}));
  b.setInsertionPointToStart(func.addEntryBlock());
  OperationState state(loc, "moek.future_kernel");
  b.create(state);
  func::ReturnOp::create(b, loc);
  EXPECT_NE(module->lookupSymbol("f"), nullptr);
  PassManager pm(&context);
  pm.enableVerifier(false); // The op is unregistered on purpose.
  pm.addPass(std::move(pass));
  failed = mlir::failed(pm.run(*module));
  return message;
}

TEST(UnknownKernel, LoopsLoweringFailsWithADiagnostic) {
  bool failed = false;
  std::string message =
      runOnUnknownKernel(moe::createMoekLowerToLoopsPass(), failed);
  EXPECT_TRUE(failed);
  EXPECT_EQ(message.rfind("'moek.future_kernel' op has no lowering to loops", 0),
            0u)
      << message;
}

TEST(UnknownKernel, GpuLoweringFailsWithADiagnostic) {
  bool failed = false;
  std::string message =
      runOnUnknownKernel(moe::createMoekLowerToGPUPass(), failed);
  EXPECT_TRUE(failed);
  EXPECT_EQ(
      message.rfind("'moek.future_kernel' op has no lowering to GPU kernels", 0),
      0u)
      << message;
}

} // namespace
