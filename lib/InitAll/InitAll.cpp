//===- InitAll.cpp - Register every dialect and pass of MoE-MLIR ----------===//

#include "moe-mlir/InitAll.h"

#include "dialects/moe/IR/MoeDialect.h"
#include "dialects/moek/IR/MoekDialect.h"
#include "passes/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

void mlir::moe::registerAllDialects(DialectRegistry &registry) {
  registry.insert<MoeDialect, moek::MoekDialect>();
  // The lowering goes through most upstream dialects (tensor, linalg,
  // bufferization, scf, memref, llvm, gpu, ...); registering all of them
  // and their interface extensions keeps pipelines free of missing-interface
  // surprises.
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerAllToLLVMIRTranslations(registry);
}

void mlir::moe::registerAllPasses() {
  mlir::registerAllPasses();
  registerMoePasses();
  registerMoePipelines();
}
