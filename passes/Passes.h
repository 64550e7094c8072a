//===- Passes.h - MoE-MLIR passes and pipelines -----------------*- C++ -*-===//

#ifndef MOE_MLIR_PASSES_PASSES_H
#define MOE_MLIR_PASSES_PASSES_H

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::moe {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Registers the named pipelines of Pipelines.cpp.
void registerMoePipelines();

} // namespace mlir::moe

#endif // MOE_MLIR_PASSES_PASSES_H
