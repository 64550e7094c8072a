//===- RunMain.h - moe-run without the compiler -----------------*- C++ -*-===//
//
// The whole of moe-run except compiling: options, inputs, running through
// moert, timing, statistics, the reference check. It needs neither MLIR nor
// LLVM, so a GPU machine without them builds it (tools/moe-run as its own
// CMake project) and runs artifacts compiled elsewhere.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_TOOLS_MOE_RUN_RUNMAIN_H
#define MOE_MLIR_TOOLS_MOE_RUN_RUNMAIN_H

#include <cstdint>
#include <string>

namespace moe::run {

/// What the compiler needs to make an artifact for moe-run.
struct CompileRequest {
  std::string programPath; ///< a .mlir file, or "" for a layer or block spec
  std::string layerSpec;
  std::string blockSpec; ///< when set, the block's program (not the layer's)
  std::string target; ///< "cpu", "cuda:sm_90", ...
  bool fusion = true;
  bool deviceSplitSizes = false; ///< CPU: received buffers sized by a bound
  int64_t expertsPerChunk = 0; ///< 0: the target's default
  std::string outputPath;
  bool backward = false; ///< compile the training step (F -> F_train)
  /// moe-place-recomputation's budget, BYTES or PERCENT% ("" for none).
  std::string memoryBudget;
};

/// Compiles into request.outputPath; returns 0 or the exit status after
/// printing one line that says what is wrong.
using CompileHook = int (*)(const CompileRequest &request);

/// moe-run's main. Without a hook, programs and specs are refused with a
/// message that says to compile them with moe-compile first.
int runMain(int argc, char **argv, CompileHook compile);

} // namespace moe::run

#endif // MOE_MLIR_TOOLS_MOE_RUN_RUNMAIN_H
