//===- LaunchPerItem.h - A GPU kernel of one thread per item ---*- C++ -*-===//
//
// The simplest kernel shape of the CUDA lowering, shared by moek-lower-to-gpu
// and moe-place-buffers-on-gpu (strided copies).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_LAUNCHPERITEM_H
#define MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_LAUNCHPERITEM_H

#include "lib/Conversion/MoekToLoops/LoopBuilder.h"

namespace mlir::moek {

/// Threads per block of a kernel of one thread per item.
constexpr int64_t kThreadsPerBlock = 256;

/// Runs `body(i)` for every i in [0, count), one GPU thread per item, as a
/// gpu.launch at the builder's insertion point. `part`, when given, names
/// the launch (the outlined kernel's name).
void launchPerItem(moe::LoopBuilder &lb, Value count,
                   function_ref<void(Value)> body, StringRef part = {},
                   int64_t threadsPerBlock = kThreadsPerBlock);

} // namespace mlir::moek

#endif // MOE_MLIR_LIB_CONVERSION_MOEKTOGPU_LAUNCHPERITEM_H
