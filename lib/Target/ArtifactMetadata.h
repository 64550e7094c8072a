//===- ArtifactMetadata.h - The metadata text of an artifact ----*- C++ -*-===//
//
// Describes each public function of a moe module in the metadata format of
// docs/ArtifactFormat.md: argument and result types, and for a function that
// is one MoE layer, the layer's configuration (`attr layer.*`), so that the
// runtime side can run the reference on it.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_TARGET_ARTIFACTMETADATA_H
#define MOE_MLIR_LIB_TARGET_ARTIFACTMETADATA_H

#include "mlir/IR/BuiltinOps.h"
#include <string>

namespace mlir::moe {

/// Builds the metadata of every public function of `module` (at the moe or
/// tensor level, before lowering). Fails with a diagnostic on a function
/// whose signature an artifact cannot carry.
FailureOr<std::string> buildArtifactMetadata(ModuleOp module,
                                             StringRef target);

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_TARGET_ARTIFACTMETADATA_H
