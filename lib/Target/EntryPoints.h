//===- EntryPoints.h - Uniform entry points of an artifact ------*- C++ -*-===//

#ifndef MOE_MLIR_LIB_TARGET_ENTRYPOINTS_H
#define MOE_MLIR_LIB_TARGET_ENTRYPOINTS_H

#include "mlir/IR/BuiltinOps.h"

namespace mlir::moe {

/// A public function as the runtime calls it.
struct EntrySignature {
  std::string name;
  unsigned numArgs = 0;
  unsigned numResults = 0;
};

/// The public functions of a module before lowering.
SmallVector<EntrySignature> collectEntrySignatures(ModuleOp module);

/// Adds to a module in the LLVM dialect what docs/ArtifactFormat.md asks of
/// an artifact: `moe_entry_<name>(void **args, void *results)` forwarding to
/// each function's C interface, `moe_artifact_free`, and the metadata text
/// as the global `moe_artifact_metadata`.
LogicalResult addArtifactEntryPoints(ModuleOp llvmModule,
                                     ArrayRef<EntrySignature> entries,
                                     StringRef metadata);

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_TARGET_ENTRYPOINTS_H
