//===- Passes.h - MoE-MLIR passes and pipelines -----------------*- C++ -*-===//

#ifndef MOE_MLIR_PASSES_PASSES_H
#define MOE_MLIR_PASSES_PASSES_H

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir {
namespace arith { class ArithDialect; }
namespace bufferization { class BufferizationDialect; }
namespace math { class MathDialect; }
namespace memref { class MemRefDialect; }
namespace scf { class SCFDialect; }
} // namespace mlir

namespace mlir::moe {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// moe IR to the LLVM dialect for the CPU: moe-lower-to-loops, one-shot
/// bufferization with ownership-based deallocation, then the upstream
/// conversions to LLVM. Public functions get C interface wrappers.
void buildLowerToCPUPipeline(OpPassManager &pm);

/// Registers the named pipelines of Pipelines.cpp.
void registerMoePipelines();

} // namespace mlir::moe

#endif // MOE_MLIR_PASSES_PASSES_H
