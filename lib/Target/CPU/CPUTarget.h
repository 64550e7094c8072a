//===- CPUTarget.h - Compile moe modules into CPU artifacts -----*- C++ -*-===//

#ifndef MOE_MLIR_LIB_TARGET_CPU_CPUTARGET_H
#define MOE_MLIR_LIB_TARGET_CPU_CPUTARGET_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace mlir::moe {

enum class EmitKind {
  Mlir,     ///< the module in the LLVM dialect, after the pipeline
  Llvm,     ///< LLVM IR after optimization
  Artifact, ///< a shared object that moert loads
};

struct CPUCompileOptions {
  EmitKind emit = EmitKind::Artifact;
  /// Where the artifact goes (EmitKind::Artifact).
  std::string outputPath;
  /// LLVM optimization level, 0 to 3.
  unsigned optLevel = 3;
  /// Zero-buffer dispatch fusion (false: the materializing lowering).
  bool fusion = true;
  /// moe-zero-buffer-fusion's experts-per-chunk.
  int64_t expertsPerChunk = 1;
  /// Where to write the memory plan as JSON ("" for none).
  std::string memoryReportPath;
  /// Stop after the memory plan: no code is generated (a report only).
  bool planOnly = false;
};

/// Lowers `module` (moe IR, modified in place) for the CPU and writes what
/// `options.emit` asks for: text to `textOut`, or the artifact to
/// `options.outputPath`. Errors are reported as diagnostics on the module's
/// context.
LogicalResult compileForCPU(ModuleOp module, const CPUCompileOptions &options,
                            llvm::raw_ostream &textOut);

} // namespace mlir::moe

#endif // MOE_MLIR_LIB_TARGET_CPU_CPUTARGET_H
