//===- Pipelines.cpp - Named pipelines of MoE-MLIR ------------------------===//

#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"

using namespace mlir;

void moe::registerMoePipelines() {}
