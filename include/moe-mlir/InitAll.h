//===- InitAll.h - Register every dialect and pass of MoE-MLIR --*- C++ -*-===//
//
// The one place that says what a tool or an embedding compiler gets: the moe
// dialects, the upstream dialects the pipelines lower through, and every pass
// and pipeline.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_INITALL_H
#define MOE_MLIR_INITALL_H

namespace mlir {
class DialectRegistry;
namespace moe {

/// Adds the moe dialects, the upstream dialects the pipelines use and their
/// bufferization and translation interfaces to `registry`.
void registerAllDialects(DialectRegistry &registry);

/// Registers the moe passes and pipelines and the upstream passes, so that
/// moe-opt can run any of them by flag.
void registerAllPasses();

} // namespace moe
} // namespace mlir

#endif // MOE_MLIR_INITALL_H
